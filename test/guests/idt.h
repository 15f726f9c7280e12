/* The interrupt descriptor table the interrupt-driven test guests share (Intel SDM vol. 3, 6.14.1: 64-bit IDT gate
 * descriptors; 6.10: IDTR). Include once per guest: it defines the table. */
#ifndef IDT_H
#define IDT_H
#include <stdint.h>

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
#endif
