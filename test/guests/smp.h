/* Shared by smp.c and smp-trampoline.S: where the AP start-up code runs and the selectors of its GDT. */
#ifndef SMP_H
#define SMP_H

/* A Startup IPI starts an AP in real mode at CS = vector << 8, IP = 0, so the trampoline is page aligned
 * below 1 MiB (Intel SDM vol. 3A, 9.4.4.1 "Typical BSP Initialization Sequence"). 0x10000 is free in a
 * petasan long64 guest: boot structures end at 0xf000 and the command line starts at 0x20000. */
#define TRAMPOLINE_ADDR 0x10000
#define TRAMPOLINE_SIPI_VECTOR (TRAMPOLINE_ADDR >> 12)

/* The trampoline's own GDT: null, flat 32-bit code, flat data, 64-bit code. */
#define TRAMPOLINE_CODE32 0x08
#define TRAMPOLINE_DATA 0x10
#define TRAMPOLINE_CODE64 0x18

/* One stack per APIC id; APIC ids at or above SMP_MAX_CPUS are not started. */
#define SMP_MAX_CPUS 32
#define AP_STACK_SIZE 4096

/* xAPIC registers (Intel SDM vol. 3A, table 11-1), at the default base. */
#define LAPIC_BASE 0xfee00000
#define LAPIC_ID 0x20		/* bits 31:24: APIC id */
#define LAPIC_SVR 0xf0
#define LAPIC_ICR_LOW 0x300
#define LAPIC_ICR_HIGH 0x310	/* bits 31:24: destination APIC id */

#endif
