/* The interrupt plumbing the interrupt-driven test guests share: the IDT (Intel SDM vol. 3, 6.14.1: 64-bit IDT gate
 * descriptors; 6.10: IDTR), the 8259A PICs (IRQ 0-7 -> vectors 0x20-0x27) and the local APIC's LINT0 as ExtINT
 * (virtual wire mode, so PIC interrupts reach the CPU whatever the VMM configured). Include once per guest, after
 * guest64.h: it defines the table. */
#ifndef INTERRUPTS_H
#define INTERRUPTS_H
#include <stdint.h>

#define PIC1_COMMAND 0x20
#define PIC1_DATA 0x21
#define PIC2_COMMAND 0xa0
#define PIC2_DATA 0xa1
#define PIC_EOI 0x20
#define IRQ_BASE_VECTOR 0x20

#define LAPIC_BASE 0xfee00000ul	/* Intel SDM vol. 3, 11.4.1: default local APIC base */
#define LAPIC_SVR 0xf0
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_SVR_ENABLE 0x100
#define LAPIC_SPURIOUS_VECTOR 0xff
#define LVT_DELIVERY_EXTINT 0x700

struct idt_gate {
	uint16_t offset_low;
	uint16_t selector;
	uint8_t ist;
	uint8_t type_attr;	/* 0x8e: present, DPL 0, 64-bit interrupt gate */
	uint16_t offset_mid;
	uint32_t offset_high;
	uint32_t reserved;
} __attribute__((packed));

struct idt_pointer {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

static struct idt_gate idt[256];

/* An interrupt gate to `handler` for `vector`, in the code segment the guest runs in (the loader's, whatever its GDT). */
static void set_gate(int vector, void (*handler)(void))
{
	uint64_t address = (uint64_t)handler;
	uint16_t cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	idt[vector] = (struct idt_gate){
		.offset_low = (uint16_t)address,
		.selector = cs,
		.type_attr = 0x8e,
		.offset_mid = (uint16_t)(address >> 16),
		.offset_high = (uint32_t)(address >> 32),
	};
}

static void load_idt(void)
{
	struct idt_pointer pointer = { sizeof(idt) - 1, (uint64_t)idt };
	__asm__ volatile("lidt %0" : : "m"(pointer));
}
/* The local APIC enabled, with LINT0 as ExtINT: the 8259s' interrupts reach this CPU. */
static void lapic_virtual_wire(void)
{
	*(volatile uint32_t *)(LAPIC_BASE + LAPIC_SVR) = LAPIC_SVR_ENABLE | LAPIC_SPURIOUS_VECTOR;
	*(volatile uint32_t *)(LAPIC_BASE + LAPIC_LVT_LINT0) = LVT_DELIVERY_EXTINT;
}

/* 8259A initialisation words (Intel 8259A datasheet): ICW1 edge-triggered, cascade, ICW4 needed; ICW2 vector base;
 * ICW3 slave on IRQ 2; ICW4 8086 mode (`master_icw4` 0x03 adds auto-EOI on the master); then the master's mask
 * (`master_mask`: a 0 bit unmasks its IRQ) and the slave all masked. */
static void init_pics(uint8_t master_icw4, uint8_t master_mask)
{
	outb(PIC1_COMMAND, 0x11);
	outb(PIC2_COMMAND, 0x11);
	outb(PIC1_DATA, IRQ_BASE_VECTOR);
	outb(PIC2_DATA, IRQ_BASE_VECTOR + 8);
	outb(PIC1_DATA, 0x04);
	outb(PIC2_DATA, 0x02);
	outb(PIC1_DATA, master_icw4);
	outb(PIC2_DATA, 0x01);
	outb(PIC1_DATA, master_mask);
	outb(PIC2_DATA, 0xff);
}
#endif
