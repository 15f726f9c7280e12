/* pio-loop: the exit-rate benchmark guest. Writes one byte to an I/O port `iterations` times, each
 * write a VM exit (or, with `mmio` set, reads 4 bytes at that MMIO address as many times), at ring 3 (natively run here) or ring 0 (emulated here), then prints a line and
 * resets. The host may poke the parameter block, at a fixed address right after the entry jump,
 * before starting the vCPU; its layout is in pio-loop-params.ts.
 *
 * Default port 0x80: the POST/io_delay port, which petasan claims with a do-nothing sink, so each exit
 * measures the round trip and not a device or an unclaimed-port warning. Nothing else uses it here.
 *
 * Ring 3 needs user-accessible pages (the loader's page tables need not set U/S), user segments
 * and permission for port I/O: this guest brings its own page tables, GDT and a TSS whose I/O
 * permission bitmap allows every port, and irets to ring 3 with IOPL 3 and interrupts off. The
 * bitmap matters: on this machine's KVM a ring-3 `in` faulted with IOPL 3 alone. Ring 3 never
 * returns to ring 0: it prints and resets itself. */
#include "uart-puts.inc"
	.set	USER_CODE_SELECTOR, 0x18 | 3
	.set	USER_DATA_SELECTOR, 0x20 | 3
	.set	RFLAGS_IOPL3, 0x3002	/* IOPL 3, reserved bit 1, IF clear */
	.set	TSS_SELECTOR, 0x28
	.set	TSS_IO_BITMAP_OFFSET, 104	/* right after the 104-byte 64-bit TSS */
	.set	IO_BITMAP_BYTES, 65536 / 8	/* one bit per port, 0 = allowed */
	.set	TSS_LIMIT, TSS_IO_BITMAP_OFFSET + IO_BITMAP_BYTES	/* includes the 0xff terminator byte */

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
	lea	pml4(%rip), %rax
	mov	%rax, %cr3
	/* Patch the TSS address into its GDT descriptor (Intel SDM vol. 3, 8.2.3): relocations cannot split it. */
	lea	tss(%rip), %rax
	mov	%ax, tss_descriptor+2(%rip)	/* base 15:0 */
	shr	$16, %rax
	mov	%al, tss_descriptor+4(%rip)	/* base 23:16 */
	mov	%ah, tss_descriptor+7(%rip)	/* base 31:24 */
	shr	$16, %rax
	mov	%eax, tss_descriptor+8(%rip)	/* base 63:32 */
	lgdt	gdt_pointer(%rip)
	mov	$TSS_SELECTOR, %ax
	ltr	%ax
	/* iretq frame: SS, RSP, RFLAGS, CS, RIP */
	pushq	$USER_DATA_SELECTOR
	lea	user_stack_top(%rip), %rax
	push	%rax
	pushq	$RFLAGS_IOPL3
	pushq	$USER_CODE_SELECTOR
	lea	loop_and_report(%rip), %rax
	push	%rax
	iretq

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
	.balign 8
/* Intel SDM vol. 3, 3.4.5: 0x08 64-bit code DPL 0, 0x10 data DPL 0, 0x18 64-bit code DPL 3,
 * 0x20 data DPL 3 (the same descriptors as /work/shared/kvm-here/cpl0probe.c, proven here). */
gdt:
	.quad	0
	.quad	0x00af9b000000ffff
	.quad	0x00cf93000000ffff
	.quad	0x00affb000000ffff
	.quad	0x00cff3000000ffff
tss_descriptor:				/* 0x28: 64-bit available TSS, present; base patched at run time */
	.word	TSS_LIMIT & 0xffff
	.word	0
	.byte	0
	.byte	0x89
	.byte	(TSS_LIMIT >> 16) & 0x0f
	.byte	0
	.long	0
	.long	0
gdt_end:
gdt_pointer:
	.word	gdt_end - gdt - 1
	.quad	gdt

	.balign 16
tss:
	.fill	102, 1, 0
	.word	TSS_IO_BITMAP_OFFSET
	.fill	IO_BITMAP_BYTES, 1, 0
	.byte	0xff			/* the bitmap must end with a byte of ones (SDM vol. 1, 19.5.2) */

	.balign 4096
/* Identity map of the first 4 GiB with 2 MiB pages, all present, writable and user (0x87 = P|RW|US|PS). */
pml4:
	.quad	pdpt + 0x07
	.fill	511, 8, 0
pdpt:
	.quad	page_directories + 0x0000 + 0x07
	.quad	page_directories + 0x1000 + 0x07
	.quad	page_directories + 0x2000 + 0x07
	.quad	page_directories + 0x3000 + 0x07
	.fill	508, 8, 0
page_directories:
	.set	page, 0
	.rept	2048
	.quad	page + 0x87
	.set	page, page + 0x200000
	.endr

	.section .bss
	.balign 16
	.skip	4096
user_stack_top:
