/* pio-loop: the exit-rate benchmark guest. Writes one byte to an I/O port `iterations` times, each
 * write a VM exit (or, with `mmio` set, reads 4 bytes at that MMIO address as many times), at ring 3 (natively run here) or ring 0 (emulated here), then prints a line and
 * resets. The host may poke the parameter block, at a fixed address right after the entry jump,
 * before starting the vCPU; its layout is in pio-loop-params.ts.
 *
 * Default port 0x80: the POST/io_delay port, which petasan claims with a do-nothing sink, so each exit
 * measures the round trip and not a device or an unclaimed-port warning. Nothing else uses it here.
 *
 * Ring 3 is entered with the guest's own page tables, GDT and TSS (ring3.inc). Ring 3 never
 * returns to ring 0: it prints and resets itself. */
#include "uart-puts.inc"
#include "ring3.inc"

	.section .text.entry, "ax"
	.globl _start
_start:
	jmp	start
	.balign 8
params:
	.ascii	"PIOLOOP1"		/* +0x08 magic */
iterations:
	.quad	100000			/* +0x10 exits to make */
ring:
	.quad	3			/* +0x18 3 = loop at ring 3, 0 = loop at ring 0 */
port:
	.quad	0x80			/* +0x20 I/O port written */
mmio:
	.quad	0			/* +0x28 0: the loop writes to `port`; else it reads 4 bytes at this guest address */

start:
	cli
	lea	user_stack_top(%rip), %rsp	/* no stack is promised; the iretq frame needs one */
	cmpq	$0, ring(%rip)
	je	loop_and_report
	ENTER_RING3 loop_and_report, user_stack_top

/* The same code runs at either privilege level. */
loop_and_report:
	mov	iterations(%rip), %rcx
	mov	port(%rip), %rdx
	mov	mmio(%rip), %rbx
	test	%rcx, %rcx
	jz	report
	test	%rbx, %rbx
	jnz	3f
1:	out	%al, %dx
	dec	%rcx
	jnz	1b
	jmp	report
3:	mov	(%rbx), %eax
	dec	%rcx
	jnz	3b
report:
	lea	done_message(%rip), %rsi
	UART_PUTS reset
reset:
	mov	$0xfe, %al		/* i8042: pulse the CPU reset line */
	out	%al, $0x64
2:	pause				/* hlt would #GP at ring 3: wait here for the VMM to stop us */
	jmp	2b

	.section .rodata
done_message:
	.asciz	"pio-loop: done\n"

	.section .data
	RING3_TABLES

	.section .bss
	.balign 16
	.skip	4096
user_stack_top:
