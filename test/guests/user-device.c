/* user-device: drives the example device of examples/sum-device.ts, a port device the user writes in
 * TypeScript: at its base port, each 32-bit write adds to a sum and a 32-bit read returns it; a 32-bit
 * write at base + 4 gives it the guest-physical address of a NUL-terminated string, which it uppercases in
 * guest memory (DMA); a write at base + 8 makes it raise its interrupt (ISA IRQ 5, through the 8259 PIC as
 * in echo.c). Memory is identity-mapped, so a pointer is the physical address. Then resets. */
#include "guest64.h"
#include "interrupts.h"

#define SUM_DEVICE_PORT 0x700
#define SUM_DEVICE_IRQ 5


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
	lapic_virtual_wire();
	init_pics(0x01, (uint8_t)~(1 << SUM_DEVICE_IRQ));
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
