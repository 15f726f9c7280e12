/* realmode: started in 16-bit real mode with CS = 0x1000 and IP = 0 (the guest is linked at 0x10000).
 * Prints one line on COM1 by polling LSR.THRE, then pulses the i8042 reset line. It sets DS and SS
 * from CS itself, so it does not depend on what the loader put in the data segment registers. */
#include "uart-puts.inc"
	.code16
	.section .text.entry, "ax"
	.globl _start
_start:
	cli
	mov	%cs, %ax
	mov	%ax, %ds
	mov	%ax, %ss
	mov	$0xfffe, %sp		/* a stack at the top of our 64 KiB segment, unused so far */
	cld
	mov	$(message - _start), %si	/* offsets are from the segment base, which is _start */
	UART_PUTS reset
reset:
	mov	$0xfe, %al		/* i8042 command 0xfe: pulse the CPU reset line */
	out	%al, $0x64
halt:
	hlt
	jmp	halt

message:
	.asciz	"realmode: hello from 16-bit\n"
