/* echo: UART receive with interrupts. Sets up an IDT, the 8259 PICs (IRQ 0-7 -> vectors 0x20-0x27,
 * only IRQ 4 unmasked) and the local APIC's LINT0 as ExtINT (virtual wire mode, so PIC interrupts
 * reach the CPU whatever the VMM configured), enables the UART's receive interrupt and sleeps in
 * `sti; hlt`. The IRQ 4 handler echoes each byte uppercased; 'q' ends with "echo: bye" and a reset. */
#include "guest64.h"
#include "interrupts.h"

#define COM1_IRQ 4

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
	lapic_virtual_wire();
	init_pics(0x01, (uint8_t)~(1 << COM1_IRQ));
	init_uart();
	uart_puts("echo: ready\n");
	while (!quit)
		__asm__ volatile("sti; hlt; cli" ::: "memory");
	uart_puts("\necho: bye\n");
	reset_machine();
}
