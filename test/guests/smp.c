/* smp: multiprocessor start-up through the in-kernel local APIC. The BSP counts the processors of the MP
 * table, copies the AP trampoline below 1 MiB and sends each AP INIT-SIPI-SIPI. Every CPU prints
 * "smp: cpu <LAPIC id> up (cpuid apic id <CPUID.1:EBX[31:24]>)" under a spinlock, then, with
 * "smp.lines=N" on the command line, N numbered lines, and counts itself done. The BSP waits for all,
 * prints "smp: <n> cpus up" and resets.
 * Atomics: this machine's KVM raises #UD for `lock xadd` at ring 0, so the lock uses `xchg` and the
 * done-counter `lock cmpxchg`; a guest here that survives the run shows both work. */
#include "guest64.h"
#include "smp.h"

/* MP Spec 1.4 chapter 4; Linux arch/x86/include/asm/mpspec_def.h. */
#define MP_SCAN_START 0x9fc00	/* the last KiB of base memory, which Linux scans too */
#define MP_SCAN_END 0xa0000
#define MPF_SIZE 16
#define MPF_PHYSPTR 4		/* u32: address of the configuration table */
#define MPC_LENGTH 4		/* u16: base table length */
#define MPC_ENTRY_COUNT 34	/* u16 */
#define MPC_HEADER_SIZE 44
#define MP_PROCESSOR 0
#define MPC_CPU_SIZE 20
#define MPC_OTHER_ENTRY_SIZE 8
#define MPC_CPU_APIC_ID 1
#define MPC_CPU_FLAGS 3
#define CPU_ENABLED 1

/* Intel SDM vol. 3A, 11.6.1 "Interrupt Command Register". */
#define ICR_DELIVERY_INIT (5 << 8)
#define ICR_DELIVERY_STARTUP (6 << 8)
#define ICR_SEND_PENDING (1 << 12)
#define ICR_LEVEL_ASSERT (1 << 14)
#define LAPIC_SVR_ENABLE 0x100
#define LAPIC_SPURIOUS_VECTOR 0xff

#define ZERO_PAGE_CMD_LINE_PTR 0x228	/* u32 (Documentation/arch/x86/boot.rst) */
#define LINES_ARG "smp.lines="
#define MAX_LINES 100000

/* The BSP gives up when nothing has been printed or counted for this many TSC ticks (seconds at any
 * plausible TSC rate), so a lost AP ends the run with a message instead of a hang. */
#define NO_PROGRESS_TSC_TICKS 30000000000ull

extern char smp_trampoline_start[], smp_trampoline_cr3[], smp_trampoline_end[];

static volatile uint32_t uart_lock;
static volatile uint32_t aps_done;
static volatile uint64_t lines_printed;	/* under uart_lock */
static uint64_t lines_per_cpu;

static void spin_lock(volatile uint32_t *lock)
{
	for (;;) {
		uint32_t was_locked = 1;
		__asm__ volatile("xchg %0, %1" : "+r"(was_locked), "+m"(*lock) : : "memory");
		if (!was_locked)
			return;
		while (*lock)
			__asm__ volatile("pause");
	}
}

static void spin_unlock(volatile uint32_t *lock)
{
	__asm__ volatile("" : : : "memory");	/* x86 stores are not reordered with earlier loads or stores */
	*lock = 0;
}

static void atomic_increment(volatile uint32_t *value)
{
	uint32_t expected = *value;
	for (;;) {
		uint32_t seen = expected;
		__asm__ volatile("lock cmpxchg %2, %1" : "+a"(seen), "+m"(*value) : "r"(expected + 1) : "memory", "cc");
		if (seen == expected)
			return;
		expected = seen;
	}
}

static uint32_t lapic_read(uint32_t reg)
{
	return *(volatile uint32_t *)(uintptr_t)(LAPIC_BASE + reg);
}

static void lapic_write(uint32_t reg, uint32_t value)
{
	*(volatile uint32_t *)(uintptr_t)(LAPIC_BASE + reg) = value;
}

static uint32_t lapic_id(void)
{
	return lapic_read(LAPIC_ID) >> 24;
}

static uint32_t cpuid_initial_apic_id(void)
{
	uint32_t eax = 1, ebx, ecx = 0, edx;
	__asm__ volatile("cpuid" : "+a"(eax), "=b"(ebx), "+c"(ecx), "=d"(edx));
	return ebx >> 24;
}

static uint64_t rdtsc(void)
{
	uint32_t low, high;
	__asm__ volatile("rdtsc" : "=a"(low), "=d"(high));
	return (uint64_t)high << 32 | low;
}

static void locked_puts(const char *s)
{
	spin_lock(&uart_lock);
	uart_puts(s);
	spin_unlock(&uart_lock);
}

static void report_up(uint32_t apic_id)
{
	spin_lock(&uart_lock);
	uart_puts("smp: cpu ");
	uart_put_dec(apic_id);
	uart_puts(" up (cpuid apic id ");
	uart_put_dec(cpuid_initial_apic_id());
	uart_puts(")\n");
	lines_printed++;
	spin_unlock(&uart_lock);
}

/* Each line is printed whole under the lock, so any byte out of place is the VMM's doing. */
static void print_lines(uint32_t apic_id)
{
	for (uint64_t line = 0; line < lines_per_cpu; line++) {
		spin_lock(&uart_lock);
		uart_puts("smp: cpu ");
		uart_put_dec(apic_id);
		uart_puts(" line ");
		uart_put_dec(line);
		uart_puts(" the quick brown fox jumps over the lazy dog\n");
		lines_printed++;
		spin_unlock(&uart_lock);
	}
}

void smp_ap_main(uint32_t apic_id)
{
	report_up(apic_id);
	print_lines(apic_id);
	atomic_increment(&aps_done);
}

static uint64_t parse_lines_arg(const uint8_t *zero_page)
{
	const char *cmdline = (const char *)(uintptr_t)*(const uint32_t *)(zero_page + ZERO_PAGE_CMD_LINE_PTR);
	if (!cmdline)
		return 0;
	for (const char *p = cmdline; *p; p++) {
		const char *arg = LINES_ARG, *q = p;
		while (*arg && *q == *arg)
			arg++, q++;
		if (*arg)
			continue;
		uint64_t lines = 0;
		while (*q >= '0' && *q <= '9' && lines <= MAX_LINES)
			lines = lines * 10 + (uint64_t)(*q++ - '0');
		return lines > MAX_LINES ? MAX_LINES : lines;
	}
	return 0;
}

static int checksum_ok(const uint8_t *bytes, uint32_t length)
{
	uint8_t sum = 0;
	while (length--)
		sum += *bytes++;
	return sum == 0;
}

/* The MP configuration table, or 0 when no valid floating pointer is found. */
static const uint8_t *find_mp_config_table(void)
{
	for (uintptr_t at = MP_SCAN_START; at < MP_SCAN_END; at += MPF_SIZE) {
		const uint8_t *mpf = (const uint8_t *)at;
		if (mpf[0] != '_' || mpf[1] != 'M' || mpf[2] != 'P' || mpf[3] != '_' || !checksum_ok(mpf, MPF_SIZE))
			continue;
		const uint8_t *table = (const uint8_t *)(uintptr_t)*(const uint32_t *)(mpf + MPF_PHYSPTR);
		if (table && table[0] == 'P' && table[1] == 'C' && table[2] == 'M' && table[3] == 'P' &&
		    checksum_ok(table, *(const uint16_t *)(table + MPC_LENGTH)))
			return table;
	}
	return 0;
}

/* Collects the APIC ids of the enabled processors; returns how many there are. */
static uint32_t mp_processors(const uint8_t *table, uint8_t apic_ids[SMP_MAX_CPUS])
{
	const uint8_t *entry = table + MPC_HEADER_SIZE, *end = table + *(const uint16_t *)(table + MPC_LENGTH);
	uint32_t count = 0;
	for (uint32_t i = 0; i < *(const uint16_t *)(table + MPC_ENTRY_COUNT) && entry < end; i++) {
		if (entry[0] != MP_PROCESSOR) {
			entry += MPC_OTHER_ENTRY_SIZE;
			continue;
		}
		if ((entry[MPC_CPU_FLAGS] & CPU_ENABLED) && count < SMP_MAX_CPUS)
			apic_ids[count++] = entry[MPC_CPU_APIC_ID];
		entry += MPC_CPU_SIZE;
	}
	return count;
}

static void send_ipi(uint32_t apic_id, uint32_t command)
{
	lapic_write(LAPIC_ICR_HIGH, apic_id << 24);
	lapic_write(LAPIC_ICR_LOW, command);
	while (lapic_read(LAPIC_ICR_LOW) & ICR_SEND_PENDING)
		__asm__ volatile("pause");
}

/* INIT, then two Startup IPIs (SDM vol. 3A, 9.4.4.1). The SDM's 10 ms and 200 us delays are for physical
 * APICs; KVM's in-kernel LAPIC latches INIT and SIPI as pending events, and ignores the second SIPI once
 * the AP runs. */
static void start_ap(uint32_t apic_id)
{
	send_ipi(apic_id, ICR_DELIVERY_INIT | ICR_LEVEL_ASSERT);
	send_ipi(apic_id, ICR_DELIVERY_STARTUP | ICR_LEVEL_ASSERT | TRAMPOLINE_SIPI_VECTOR);
	send_ipi(apic_id, ICR_DELIVERY_STARTUP | ICR_LEVEL_ASSERT | TRAMPOLINE_SIPI_VECTOR);
}

static void install_trampoline(void)
{
	uint8_t *copy = (uint8_t *)TRAMPOLINE_ADDR;
	for (const char *from = smp_trampoline_start; from < smp_trampoline_end; from++)
		*copy++ = (uint8_t)*from;
	uint64_t cr3;
	__asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
	*(volatile uint32_t *)(TRAMPOLINE_ADDR + (smp_trampoline_cr3 - smp_trampoline_start)) = (uint32_t)cr3;
}

/* Waits until all `aps` APs are done; 0 if progress stopped first. */
static int wait_for_aps(uint32_t aps)
{
	uint64_t last_progress = lines_printed + aps_done, since = rdtsc();
	while (aps_done < aps) {
		uint64_t progress = lines_printed + aps_done;
		if (progress != last_progress) {
			last_progress = progress;
			since = rdtsc();
		} else if (rdtsc() - since > NO_PROGRESS_TSC_TICKS) {
			return 0;
		}
		__asm__ volatile("pause");
	}
	return 1;
}

void main(const uint8_t *zero_page)
{
	uint8_t apic_ids[SMP_MAX_CPUS];
	const uint8_t *table = find_mp_config_table();
	if (!table) {
		uart_puts("smp: no MP table\n");
		reset_machine();
	}
	uint32_t cpus = mp_processors(table, apic_ids), bsp_id = lapic_id(), aps = 0;
	lines_per_cpu = parse_lines_arg(zero_page);
	report_up(bsp_id);

	install_trampoline();
	lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | LAPIC_SPURIOUS_VECTOR);
	for (uint32_t i = 0; i < cpus; i++) {
		if (apic_ids[i] == bsp_id)
			continue;
		if (apic_ids[i] >= SMP_MAX_CPUS) {
			locked_puts("smp: an APIC id is beyond this guest's stacks; not started\n");
			continue;
		}
		start_ap(apic_ids[i]);
		aps++;
	}
	print_lines(bsp_id);
	if (!wait_for_aps(aps)) {
		spin_lock(&uart_lock);
		uart_puts("smp: timeout: ");
		uart_put_dec(1 + aps_done);
		uart_puts(" of ");
		uart_put_dec(1 + aps);
		uart_puts(" cpus done\n");
		reset_machine();
	}
	spin_lock(&uart_lock);
	uart_puts("smp: ");
	uart_put_dec(1 + aps);
	uart_puts(" cpus up\n");
	reset_machine();
}
