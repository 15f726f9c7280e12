/* long64: started in 64-bit mode at the ELF entry; prints a line and the e820 entry count from the
 * boot_params zero page petasan passes in rsi, then resets. */
#include "guest64.h"

void main(const uint8_t *zero_page)
{
	uart_puts("long64: hello from 64-bit\n");
	uart_puts("long64: e820_entries=");
	uart_put_dec(zero_page[ZERO_PAGE_E820_ENTRIES]);
	uart_puts("\n");
	reset_machine();
}
