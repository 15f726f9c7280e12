/* Helpers shared by the 64-bit C test guests: port I/O, COM1 output by polling, i8042 reset.
 * Everything is static inline so each guest is a single object plus start64.S. */
#ifndef GUEST64_H
#define GUEST64_H

#include <stdint.h>

#define COM1 0x3f8		/* 16550 registers: THR/RBR +0, IER +1, IIR/FCR +2, LCR +3, MCR +4, LSR +5 */
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define I8042_COMMAND 0x64
#define I8042_PULSE_RESET 0xfe

static inline void outb(uint16_t port, uint8_t value)
{
	__asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t value;
	__asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
	return value;
}

static inline void uart_putc(char c)
{
	while (!(inb(COM1 + 5) & LSR_THRE))
		;
	outb(COM1, (uint8_t)c);
}

static inline void uart_puts(const char *s)
{
	while (*s)
		uart_putc(*s++);
}

static inline void uart_put_hex(uint64_t value, int digits)
{
	uart_puts("0x");
	for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4)
		uart_putc("0123456789abcdef"[(value >> shift) & 0xf]);
}

static inline void uart_put_dec(uint64_t value)
{
	char digits[20];
	int n = 0;
	do {
		digits[n++] = (char)('0' + value % 10);
		value /= 10;
	} while (value);
	while (n)
		uart_putc(digits[--n]);
}

static inline __attribute__((noreturn)) void reset_machine(void)
{
	outb(I8042_COMMAND, I8042_PULSE_RESET);
	for (;;)
		__asm__ volatile("cli; hlt");
}

/* struct boot_params offsets (Linux Documentation/arch/x86/zero-page.rst). */
#define ZERO_PAGE_E820_ENTRIES 0x1e8	/* u8 */
#define ZERO_PAGE_E820_TABLE 0x2d0	/* struct boot_e820_entry[128]: u64 addr, u64 size, u32 type */
#define E820_ENTRY_SIZE 20
#define E820_RAM 1

#endif
