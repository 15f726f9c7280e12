/* echo: UART receive with interrupts. Sets up an IDT, the 8259 PICs (IRQ 0-7 -> vectors 0x20-0x27,
 * only IRQ 4 unmasked) and the local APIC's LINT0 as ExtINT (virtual wire mode, so PIC interrupts
 * reach the CPU whatever the VMM configured), enables the UART's receive interrupt and sleeps in
 * `sti; hlt`. The IRQ 4 handler echoes each byte uppercased; 'q' ends with "echo: bye" and a reset. */
#include "guest64.h"
#include "idt.h"

#define PIC1_COMMAND 0x20
#define PIC1_DATA 0x21
#define PIC2_COMMAND 0xa0
#define PIC2_DATA 0xa1
#define PIC_EOI 0x20
#define IRQ_BASE_VECTOR 0x20
#define COM1_IRQ 4

#define LAPIC_BASE 0xfee00000ul	/* Intel SDM vol. 3, 11.4.1: default local APIC base */
#define LAPIC_SVR 0xf0
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_SVR_ENABLE 0x100
#define LAPIC_SPURIOUS_VECTOR 0xff
#define LVT_DELIVERY_EXTINT 0x700

static volatile int quit;

void irq4_entry(void);
void spurious_irq_entry(void);

/* Saves the registers a C call may clobber (SysV ABI), calls the handler, returns from the interrupt.
 * Nine pushes after the CPU's five-word frame keep rsp 16-byte aligned at the call. */
__asm__(
	".text\n"
	".globl irq4_entry\n"
	"irq4_entry:\n"
	"	push %rax; push %rcx; push %rdx; push %rsi; push %rdi\n"
	"	push %r8; push %r9; push %r10; push %r11\n"
	"	cld\n"
	"	call serial_interrupt\n"
	"	pop %r11; pop %r10; pop %r9; pop %r8\n"
	"	pop %rdi; pop %rsi; pop %rdx; pop %rcx; pop %rax\n"
	"	iretq\n"
	/* A spurious IRQ 7 from the 8259 needs no EOI. */
	".globl spurious_irq_entry\n"
	"spurious_irq_entry:\n"
	"	iretq\n");

void serial_interrupt(void)
{
	while (inb(COM1 + 5) & LSR_DR) {
		char c = (char)inb(COM1);
		if (c == 'q') {
			quit = 1;
			continue;
		}
		uart_putc(c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c);
	}
	outb(PIC1_COMMAND, PIC_EOI);
}

/* 8259A initialisation words (Intel 8259A datasheet): ICW1 edge-triggered, cascade, ICW4 needed;
 * ICW2 vector base; ICW3 slave on IRQ 2; ICW4 8086 mode. */
static void init_pics(void)
{
	outb(PIC1_COMMAND, 0x11);
	outb(PIC2_COMMAND, 0x11);
	outb(PIC1_DATA, IRQ_BASE_VECTOR);
	outb(PIC2_DATA, IRQ_BASE_VECTOR + 8);
	outb(PIC1_DATA, 0x04);
	outb(PIC2_DATA, 0x02);
	outb(PIC1_DATA, 0x01);
	outb(PIC2_DATA, 0x01);
	outb(PIC1_DATA, (uint8_t)~(1 << COM1_IRQ));
	outb(PIC2_DATA, 0xff);
}

static void lapic_write(uint32_t reg, uint32_t value)
{
	*(volatile uint32_t *)(LAPIC_BASE + reg) = value;
}

static void init_uart(void)
{
	outb(COM1 + 3, 0x03);	/* LCR: 8N1, DLAB off */
	outb(COM1 + 2, 0x01);	/* FCR: FIFOs on, trigger level 1 */
	outb(COM1 + 4, 0x0b);	/* MCR: DTR, RTS, OUT2 (gates the IRQ on PCs) */
	outb(COM1 + 1, 0x01);	/* IER: received data available */
}

void main(void)
{
	set_gate(IRQ_BASE_VECTOR + COM1_IRQ, irq4_entry);
	set_gate(IRQ_BASE_VECTOR + 7, spurious_irq_entry);
	load_idt();
	lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | LAPIC_SPURIOUS_VECTOR);
	lapic_write(LAPIC_LVT_LINT0, LVT_DELIVERY_EXTINT);
	init_pics();
	init_uart();
	uart_puts("echo: ready\n");
	while (!quit)
		__asm__ volatile("sti; hlt; cli" ::: "memory");
	uart_puts("\necho: bye\n");
	reset_machine();
}
