/* user-device: drives the example device of examples/sum-device.ts, a port device the user writes in
 * TypeScript: at its base port, each 32-bit write adds to a sum and a 32-bit read returns it; a 32-bit
 * write at base + 4 gives it the guest-physical address of a NUL-terminated string, which it uppercases in
 * guest memory (DMA). Memory is identity-mapped, so a pointer is the physical address. Then resets. */
#include "guest64.h"

#define SUM_DEVICE_PORT 0x700

static inline void outl(uint16_t port, uint32_t value)
{
	__asm__ volatile("outl %0, %1" : : "a"(value), "Nd"(port));
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t value;
	__asm__ volatile("inl %1, %0" : "=a"(value) : "Nd"(port));
	return value;
}

static char message[] = "hello from the guest";

void main(void)
{
	for (uint32_t i = 1; i <= 10; i++)
		outl(SUM_DEVICE_PORT, i);
	uart_puts("user-device: sum=");
	uart_put_dec(inl(SUM_DEVICE_PORT));
	uart_puts("\n");
	outl(SUM_DEVICE_PORT + 4, (uint32_t)(uint64_t)message);
	uart_puts("user-device: ");
	uart_puts(message);
	uart_puts("\n");
	reset_machine();
}
