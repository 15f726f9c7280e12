/* unmapped: touches guest physical addresses that are neither RAM nor a device: one in the MMIO
 * hole below 4 GiB and one just above the top of RAM (from the zero page's e820 table). Writes
 * there must be dropped and reads answered with all ones, as on a PC bus with nothing there. */
#include "guest64.h"

#define MMIO_HOLE_ADDRESS 0xe0000000ul
#define IDENTITY_MAPPED_LIMIT 0x100000000ul	/* the loader maps the first 4 GiB */

static uint32_t touch(uint64_t address)
{
	volatile uint32_t *p = (volatile uint32_t *)address;
	*p = 0x12345678;
	return *p;
}

/* The end of the highest e820 RAM range, or 0 when the zero page has no table. */
static uint64_t ram_top(const uint8_t *zero_page)
{
	uint64_t top = 0;
	int entries = zero_page[ZERO_PAGE_E820_ENTRIES];
	for (int i = 0; i < entries; i++) {
		const uint8_t *entry = zero_page + ZERO_PAGE_E820_TABLE + i * E820_ENTRY_SIZE;
		uint64_t addr = *(const uint64_t *)entry;
		uint64_t size = *(const uint64_t *)(entry + 8);
		uint32_t type = *(const uint32_t *)(entry + 16);
		if (type == E820_RAM && addr + size > top)
			top = addr + size;
	}
	return top;
}

void main(const uint8_t *zero_page)
{
	uart_puts("unmapped: touching\n");
	uart_puts("unmapped: read=");
	uart_put_hex(touch(MMIO_HOLE_ADDRESS), 8);
	uart_puts("\n");

	uint64_t top = ram_top(zero_page);
	if (top == 0 || top + sizeof(uint32_t) > IDENTITY_MAPPED_LIMIT) {
		uart_puts("unmapped: no RAM top below 4 GiB, skipping the beyond-RAM access\n");
	} else {
		uart_puts("unmapped: beyond-ram ");
		uart_put_hex(top, 8);
		uart_puts(" read=");
		uart_put_hex(touch(top), 8);
		uart_puts("\n");
	}
	uart_puts("unmapped: done\n");
	reset_machine();
}
