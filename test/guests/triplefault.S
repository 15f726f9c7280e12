/* triplefault: prints a line, loads an empty IDT (limit 0) and executes ud2. #UD cannot be delivered,
 * nor can the #GP and #DF that follow: a triple fault, which KVM reports as KVM_EXIT_SHUTDOWN. */
	.section .text.entry, "ax"
	.globl _start
_start:
	cli
	lea	message(%rip), %rsi
next_char:
	lodsb
	test	%al, %al
	jz	fault
	mov	%al, %bl
	mov	$0x3fd, %dx		/* COM1 LSR */
wait_thre:
	in	%dx, %al
	test	$0x20, %al		/* THRE */
	jz	wait_thre
	mov	$0x3f8, %dx		/* COM1 THR */
	mov	%bl, %al
	out	%al, %dx
	jmp	next_char
fault:
	lidt	empty_idt(%rip)
	ud2
	/* Not reached: if the fault were somehow survived, say so and reset rather than hang. */
	lea	survived(%rip), %rsi
	jmp	next_char

	.section .rodata
message:
	.asciz	"triplefault: about to fault\n"
survived:
	.asciz	"triplefault: survived the fault\n"
empty_idt:
	.word	0			/* limit 0: no gate can be read */
	.quad	0
