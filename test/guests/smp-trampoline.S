/* The application processors' start-up code. The BSP copies smp_trampoline_start..smp_trampoline_end to
 * TRAMPOLINE_ADDR, stores its CR3 at smp_trampoline_cr3 and sends INIT-SIPI-SIPI. Each AP then goes
 * real mode -> 32-bit protected mode -> long mode on the BSP's identity-mapped page tables (Intel SDM vol. 3A,
 * 9.9 "Mode Switching"), takes the stack its APIC id selects and calls smp_ap_main(apic_id).
 * Code between the start and end labels runs from the copy, so it uses only offsets from the start. */
#include "smp.h"

#define CR0_PE 0x1
#define CR0_PG 0x80000000
#define CR4_PAE 0x20
#define MSR_EFER 0xc0000080
#define EFER_LME 0x100
#define AT_COPY(label) (TRAMPOLINE_ADDR + (label) - smp_trampoline_start)

	.text
	.code16
	.balign 16
	.globl smp_trampoline_start
smp_trampoline_start:
	cli
	mov	%cs, %ax		/* CS base = TRAMPOLINE_ADDR */
	mov	%ax, %ds
	lgdtl	(trampoline_gdt_pointer - smp_trampoline_start)
	mov	%cr0, %eax
	or	$CR0_PE, %eax
	mov	%eax, %cr0
	ljmpl	$TRAMPOLINE_CODE32, $AT_COPY(protected32)

	.code32
protected32:
	mov	$TRAMPOLINE_DATA, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	mov	%cr4, %eax
	or	$CR4_PAE, %eax
	mov	%eax, %cr4
	mov	AT_COPY(smp_trampoline_cr3), %eax
	mov	%eax, %cr3
	mov	$MSR_EFER, %ecx
	rdmsr
	or	$EFER_LME, %eax
	wrmsr
	mov	%cr0, %eax
	or	$CR0_PG, %eax
	mov	%eax, %cr0		/* long mode is active from here, in compatibility mode */
	ljmpl	$TRAMPOLINE_CODE64, $AT_COPY(long64)

	.code64
long64:
	mov	$smp_ap_entry64, %eax	/* back to the guest image at 1 MiB */
	jmp	*%rax

	.balign 8
trampoline_gdt:
	.quad	0
	.quad	0x00cf9a000000ffff	/* TRAMPOLINE_CODE32: base 0, limit 4 GiB, execute/read, D=1 */
	.quad	0x00cf92000000ffff	/* TRAMPOLINE_DATA: base 0, limit 4 GiB, read/write */
	.quad	0x00af9a000000ffff	/* TRAMPOLINE_CODE64: L=1, D=0 */
trampoline_gdt_pointer:
	.word	trampoline_gdt_pointer - trampoline_gdt - 1
	.long	AT_COPY(trampoline_gdt)
	.globl smp_trampoline_cr3
smp_trampoline_cr3:
	.long	0			/* written by the BSP in the copy */
	.globl smp_trampoline_end
smp_trampoline_end:

/* Runs from the image: picks the stack of this APIC id and calls smp_ap_main(apic_id). */
smp_ap_entry64:
	mov	$(LAPIC_BASE + LAPIC_ID), %esi	/* zero-extended: a 32-bit displacement would be sign-extended */
	mov	(%rsi), %edi
	shr	$24, %edi
	cmp	$SMP_MAX_CPUS, %edi
	jae	ap_halt
	lea	1(%rdi), %eax
	imul	$AP_STACK_SIZE, %eax
	lea	ap_stacks(%rip), %rsp
	add	%rax, %rsp
	call	smp_ap_main
ap_halt:
	cli
	hlt
	jmp	ap_halt

	.section .bss
	.balign 16
ap_stacks:
	.skip	SMP_MAX_CPUS * AP_STACK_SIZE
