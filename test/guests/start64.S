/* Entry of the 64-bit C test guests: petasan starts them in long mode with interrupts off, rsi =
 * the boot_params zero page and no stack it promises. Sets a stack, calls main(zero_page), and
 * resets through the i8042 if main returns. */
	.section .text.entry, "ax"
	.globl _start
_start:
	cli
	lea	stack_top(%rip), %rsp
	mov	%rsi, %rdi
	call	main
	mov	$0xfe, %al
	out	%al, $0x64
1:	hlt
	jmp	1b

	.section .bss
	.balign 16
	.skip 16384
stack_top:
