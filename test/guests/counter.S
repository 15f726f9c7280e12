/* counter: the snapshot test guest. Counts forever at ring 3 (natively run on hosts whose KVM emulates
 * ring 0, see KVM-HERE.md) and prints each value on COM1 as "counter: <16 hex digits>\n", with a pause
 * between lines. The count lives in guest RAM and the loop's state in registers, so a VM restored from a
 * snapshot goes on from the value it had, not from 0. Each line also writes one byte to the next of
 * TOUCH_PAGES pages, so k lines dirty k more pages (the Diff snapshot test counts them).
 *
 * Ring 3 as pio-loop.S enters it (ring3.inc): own page tables (user pages), GDT with user segments, a TSS whose
 * I/O bitmap allows every port, iretq to ring 3 with IOPL 3 and interrupts off. Ring 3 never returns.
 *
 * With FILL_MIB defined non-zero (counter-fill.S), ring 3 first writes every page of FILL_MIB MiB from 16 MiB up
 * (each page its own address, so no two are alike), then reads a word of each of them again before every line:
 * a read-mostly working set of that size, as a booted guest has, for the clone memory benchmark (bench/clones.ts). */
#ifndef FILL_MIB
#define FILL_MIB 0
#endif
#include "ring3.inc"
	.set	PAUSE_LOOPS, 30000000	/* ~10-30 ms natively between lines */
	.set	TOUCH_PAGES, 256
	.set	FILL_BASE, 0x1000000

	.section .text.entry, "ax"
	.globl _start
_start:
	cli
	lea	user_stack_top(%rip), %rsp
	ENTER_RING3 user_entry, user_stack_top

user_entry:
#if FILL_MIB
	mov	$FILL_BASE, %rdi
	mov	$(FILL_MIB * 256), %ecx
5:	mov	%rdi, (%rdi)
	add	$4096, %rdi
	dec	%ecx
	jnz	5b
#endif
count_forever:
#if FILL_MIB
	mov	$FILL_BASE, %rdi
	mov	$(FILL_MIB * 256), %ecx
6:	mov	(%rdi), %rax
	add	$4096, %rdi
	dec	%ecx
	jnz	6b
#endif
	incq	counter(%rip)
	mov	counter(%rip), %rax
	and	$(TOUCH_PAGES - 1), %eax
	shl	$12, %rax
	lea	touched(%rip), %rdx
	movb	$1, (%rdx,%rax)
	lea	prefix(%rip), %rsi
	call	puts
	mov	counter(%rip), %r8
	mov	$16, %r9d
1:	rol	$4, %r8
	mov	%r8d, %eax
	and	$0xf, %eax
	lea	hex_digits(%rip), %rdx
	movzbl	(%rdx,%rax), %eax
	call	putc
	dec	%r9d
	jnz	1b
	mov	$'\n', %al
	call	putc
	mov	$PAUSE_LOOPS, %rcx
2:	dec	%rcx
	jnz	2b
	jmp	count_forever

/* putc: %al to COM1 once LSR.THRE is set (16550: LSR at 0x3fd bit 5, THR at 0x3f8). Clobbers bl, dx. */
putc:
	mov	%al, %bl
	mov	$0x3fd, %dx
3:	in	%dx, %al
	test	$0x20, %al
	jz	3b
	mov	$0x3f8, %dx
	mov	%bl, %al
	out	%al, %dx
	ret

/* puts: the NUL-terminated string at %rsi. */
puts:
	lodsb
	test	%al, %al
	jz	4f
	call	putc
	jmp	puts
4:	ret

	.section .rodata
prefix:
	.asciz	"counter: "
hex_digits:
	.ascii	"0123456789abcdef"

	.section .data
	.balign 8
counter:
	.quad	0
	RING3_TABLES

	.section .bss
	.balign 16
	.skip	4096
user_stack_top:
	.balign 4096
touched:
	.skip	TOUCH_PAGES * 4096
