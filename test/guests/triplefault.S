/* triplefault: prints a line, loads an empty IDT (limit 0) and executes ud2. #UD cannot be delivered,
 * nor can the #GP and #DF that follow: a triple fault, which KVM reports as KVM_EXIT_SHUTDOWN. */
#include "uart-puts.inc"
	.section .text.entry, "ax"
	.globl _start
_start:
	cli
	lea	message(%rip), %rsi
	UART_PUTS fault
fault:
	lidt	empty_idt(%rip)
	ud2
	/* Not reached: if the fault were somehow survived, say so and reset rather than hang. */
	lea	survived(%rip), %rsi
	UART_PUTS reset
reset:
	mov	$0xfe, %al		/* i8042: pulse the CPU reset line */
	out	%al, $0x64
1:	jmp	1b

	.section .rodata
message:
	.asciz	"triplefault: about to fault\n"
survived:
	.asciz	"triplefault: survived the fault\n"
empty_idt:
	.word	0			/* limit 0: no gate can be read */
	.quad	0
