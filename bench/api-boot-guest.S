/* api-boot-guest: the api-boot benchmark's guest. Its first instructions put one marker byte on COM1, so
 * the host sees the byte as soon as the vCPU runs; then it prints a line and resets through the i8042.
 *
 * An `out` with an immediate port reaches ports 0-0xff only (Intel SDM vol. 2, OUT), and petasan starts
 * ELF64 guests with rdx and rax zero, so the port and the byte are loaded first: the `out` is the third
 * instruction. The two moves cost ~1 us each under this host's ring-0 emulation (KVM-HERE.md), far below
 * what the benchmark resolves, so nothing is subtracted for them.
 *
 * ELF64 long mode at 1 MiB (test/guests/long64.ld): petasan's 64-bit boot path, page tables and all,
 * entered with interrupts off (the loader contract in test/guests/build.ts). */
	.set	COM1_THR, 0x3f8		/* 16550 transmit holding register, COM1 base (PC/AT port map) */
	.set	COM1_LSR, 0x3fd		/* line status register: base + 5 (16550 datasheet) */
	.set	LSR_THRE, 0x20		/* transmit holding register empty (16550 datasheet, LSR bit 5) */
	.set	I8042_COMMAND, 0x64
	.set	I8042_PULSE_RESET, 0xfe	/* pulse output line 0, the CPU reset line (8042 command set) */

	.section .text.entry, "ax"
	.globl _start
_start:
	mov	$COM1_THR, %edx
	mov	$'!', %al		/* the marker byte: API_BOOT_GUEST_OUTPUT in api-boot-guest.ts */
	out	%al, %dx
	lea	done_line(%rip), %rsi
next_char:
	lodsb
	test	%al, %al
	jz	reset
	mov	%al, %bl
	mov	$COM1_LSR, %dx
wait_thre:
	in	%dx, %al
	test	$LSR_THRE, %al
	jz	wait_thre
	mov	$COM1_THR, %dx
	mov	%bl, %al
	out	%al, %dx
	jmp	next_char
reset:
	mov	$I8042_PULSE_RESET, %al
	out	%al, $I8042_COMMAND
halt:
	hlt
	jmp	halt

	.section .rodata
done_line:
	.asciz	"\napi-boot-guest: done\n"	/* the rest of API_BOOT_GUEST_OUTPUT */
