/* user-device: drives the example device of examples/sum-device.ts, a port device the user writes in
 * TypeScript: at its base port, each 32-bit write adds to a sum and a 32-bit read returns it; a 32-bit
 * write at base + 4 gives it the guest-physical address of a NUL-terminated string, which it uppercases in
 * guest memory (DMA); a write at base + 8 makes it raise its interrupt (ISA IRQ 5, through the 8259 PIC as
 * in echo.c). Memory is identity-mapped, so a pointer is the physical address. Then resets. */
#include "guest64.h"
#include "idt.h"

#define SUM_DEVICE_PORT 0x700
#define SUM_DEVICE_IRQ 5

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

static inline void outl(uint16_t port, uint32_t value)
{
	__asm__ volatile("outl %0, %1" : : "a"(value), "Nd"(port));
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t value;
	__asm__ volatile("inl %1, %0" : "=a"(value) : "Nd"(port));
	return value;
}

static volatile int interrupts;

void device_irq_entry(void);
void spurious_irq_entry(void);

/* As echo.c: save the caller-saved registers, call the C handler, return from the interrupt. */
__asm__(
	".text\n"
	".globl device_irq_entry\n"
	"device_irq_entry:\n"
	"	push %rax; push %rcx; push %rdx; push %rsi; push %rdi\n"
	"	push %r8; push %r9; push %r10; push %r11\n"
	"	cld\n"
	"	call device_interrupt\n"
	"	pop %r11; pop %r10; pop %r9; pop %r8\n"
	"	pop %rdi; pop %rsi; pop %rdx; pop %rcx; pop %rax\n"
	"	iretq\n"
	".globl spurious_irq_entry\n"
	"spurious_irq_entry:\n"
	"	iretq\n");

void device_interrupt(void)
{
	interrupts++;
	outb(PIC1_COMMAND, PIC_EOI);
}

/* 8259A: edge-triggered, cascade, vectors from IRQ_BASE_VECTOR, only the device's IRQ unmasked. */
static void init_interrupts(void)
{
	set_gate(IRQ_BASE_VECTOR + SUM_DEVICE_IRQ, device_irq_entry);
	set_gate(IRQ_BASE_VECTOR + 7, spurious_irq_entry);
	load_idt();
	*(volatile uint32_t *)(LAPIC_BASE + LAPIC_SVR) = LAPIC_SVR_ENABLE | LAPIC_SPURIOUS_VECTOR;
	*(volatile uint32_t *)(LAPIC_BASE + LAPIC_LVT_LINT0) = LVT_DELIVERY_EXTINT;
	outb(PIC1_COMMAND, 0x11);
	outb(PIC2_COMMAND, 0x11);
	outb(PIC1_DATA, IRQ_BASE_VECTOR);
	outb(PIC2_DATA, IRQ_BASE_VECTOR + 8);
	outb(PIC1_DATA, 0x04);
	outb(PIC2_DATA, 0x02);
	outb(PIC1_DATA, 0x01);
	outb(PIC2_DATA, 0x01);
	outb(PIC1_DATA, (uint8_t)~(1 << SUM_DEVICE_IRQ));
	outb(PIC2_DATA, 0xff);
}

static char message[] = "hello from the guest";

void main(void)
{
	for (uint32_t i = 1; i <= 10; i++)
		outl(SUM_DEVICE_PORT, i);
	uart_puts("user-device: sum=");
	uart_put_dec(inl(SUM_DEVICE_PORT));
	uart_puts("\n");

	outl(SUM_DEVICE_PORT + 4, (uint32_t)(uint64_t)message);
	uart_puts("user-device: ");
	uart_puts(message);
	uart_puts("\n");

	init_interrupts();
	outl(SUM_DEVICE_PORT + 8, 1);
	while (!interrupts)
		__asm__ volatile("sti; hlt; cli" ::: "memory");
	uart_puts("user-device: interrupt\n");
	reset_machine();
}
