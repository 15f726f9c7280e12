/* virtio-blk: a minimal polling driver for the first virtio-mmio device (petasan puts the root, or
 * only, drive there). Initialises the device (virtio 1.2 §3.1.1, §4.2.3), sets up queue 0 with its
 * rings in this guest's .bss, prints the capacity, writes a 4 KiB pattern at sector 8, flushes, reads
 * it back and compares. A read-only drive refuses the write; that is reported and the run goes on.
 * With the word "hostile" on the kernel command line it also submits two broken descriptor chains (a
 * buffer outside guest RAM, a looping chain), prints what came back, and shows a normal read still
 * works. Ends with "virtio-blk: done" and halts with interrupts off: the test kills the VMM.
 *
 * With the word "phases" on the command line it does none of that I/O and instead runs timed read
 * phases for the host, which times them against the drive's rate limiter by when the lines arrive:
 * "virtio-blk: phase P ready", then it waits for a line "COUNT BYTES" on COM1 (polled), prints
 * "virtio-blk: phase P start", makes COUNT reads of BYTES (a multiple of 512, at most READ_MAX_BYTES)
 * at sector 0, one request at a time, and prints "virtio-blk: phase P done". A COUNT of 0 ends the
 * phases. Between phases the host may change the limits (PATCH /drives).
 *
 * No interrupts: requests are completed by polling the used ring (the driver asks for none with
 * VIRTQ_AVAIL_F_NO_INTERRUPT). One request is in flight at a time. */
#include "guest64.h"
#include "virtio-blk.h"

/* The first device window petasan's device manager places (src/vmm/device-manager.ts). */
#define VIRTIO_MMIO_BASE 0xd0000000ul

/* struct boot_params (Linux Documentation/arch/x86/zero-page.rst): hdr.cmd_line_ptr and its high half. */
#define ZERO_PAGE_CMD_LINE_PTR 0x228
#define ZERO_PAGE_EXT_CMD_LINE_PTR 0x0c8
#define PATTERN_SECTOR 8
#define PATTERN_BYTES 4096
/* Far above any RAM petasan gives a guest (at most 16 GiB): a buffer the device must refuse. */
#define OUTSIDE_GUEST_RAM 0x4000000000ul
/* Status byte value before the device writes one: tells "not written" from every VIRTIO_BLK_S_*. */
#define STATUS_UNWRITTEN 0xff

/* The largest read of a timed phase: large enough that a bandwidth limit is reached with few requests,
 * so the guest's own (emulated, ~1 us an instruction) time per request stays small against the limit. */
#define READ_MAX_BYTES 65536
/* Longest line the host sends to start a phase ("COUNT BYTES\n"); the rest of a longer one is dropped. */
#define COMMAND_MAX 32

/* Polls of the used ring between looks at the device status register (each look is a VM exit). */
#define POLLS_PER_STATUS_CHECK 1024

static struct virtq_desc desc_table[QUEUE_SIZE] __attribute__((aligned(4096)));
static struct virtq_avail avail_ring __attribute__((aligned(4096)));
static struct virtq_used used_ring __attribute__((aligned(4096)));
static uint16_t next_avail;
static uint16_t next_used;

static struct virtio_blk_req_header request_header;
static uint8_t request_status;
static uint8_t pattern[PATTERN_BYTES] __attribute__((aligned(4096)));
static uint8_t readback[PATTERN_BYTES] __attribute__((aligned(4096)));
static uint8_t phase_buffer[READ_MAX_BYTES] __attribute__((aligned(4096)));

struct completion {
	int ok;		/* 0 when the device failed instead of completing the chain */
	uint32_t used_len;
};

static inline uint32_t mmio_read(uint32_t reg)
{
	return *(volatile uint32_t *)(VIRTIO_MMIO_BASE + reg);
}

static inline void mmio_write(uint32_t reg, uint32_t value)
{
	*(volatile uint32_t *)(VIRTIO_MMIO_BASE + reg) = value;
}

/* Orders ring stores against each other and against the notify (virtio 1.2 §2.7.13). */
static inline void memory_barrier(void)
{
	__asm__ volatile("mfence" ::: "memory");
}

/* rep stosb: one emulated instruction, and gcc cannot turn it into a call to memset. */
static void fill_bytes(void *buffer, uint8_t value, uint64_t count)
{
	__asm__ volatile("rep stosb" : "+D"(buffer), "+c"(count) : "a"(value) : "memory");
}

static void fail(const char *what, uint64_t value)
{
	uart_puts("virtio-blk: FAILED: ");
	uart_puts(what);
	uart_puts(" ");
	uart_put_hex(value, 8);
	uart_puts("\n");
}

/* Whether `word` appears as a whole space-separated word in the NUL-terminated `line`. */
static int has_word(const char *line, const char *word)
{
	while (*line) {
		const char *w = word;
		const char *l = line;
		while (*w && *l == *w) {
			w++;
			l++;
		}
		if (!*w && (*l == ' ' || !*l))
			return 1;
		while (*line && *line != ' ')
			line++;
		while (*line == ' ')
			line++;
	}
	return 0;
}

static const char *kernel_cmdline(const uint8_t *zero_page)
{
	uint64_t low = *(const uint32_t *)(zero_page + ZERO_PAGE_CMD_LINE_PTR);
	uint64_t high = *(const uint32_t *)(zero_page + ZERO_PAGE_EXT_CMD_LINE_PTR);
	return (const char *)((high << 32) | low);
}

/* Device initialisation, virtio 1.2 §3.1.1 with the MMIO specifics of §4.2.3.1-2. 0 on success. */
static int init_device(void)
{
	uint32_t magic = mmio_read(VIRTIO_MMIO_MAGIC_VALUE);
	if (magic != VIRTIO_MMIO_MAGIC) {
		fail("no virtio-mmio device, magic", magic);
		return -1;
	}
	if (mmio_read(VIRTIO_MMIO_VERSION) != VIRTIO_MMIO_VERSION_MODERN) {
		fail("not a version 2 virtio-mmio device, version", mmio_read(VIRTIO_MMIO_VERSION));
		return -1;
	}
	if (mmio_read(VIRTIO_MMIO_DEVICE_ID) != VIRTIO_ID_BLOCK) {
		fail("not a block device, device id", mmio_read(VIRTIO_MMIO_DEVICE_ID));
		return -1;
	}

	mmio_write(VIRTIO_MMIO_STATUS, 0);
	uint32_t status = VIRTIO_STATUS_ACKNOWLEDGE;
	mmio_write(VIRTIO_MMIO_STATUS, status);
	status |= VIRTIO_STATUS_DRIVER;
	mmio_write(VIRTIO_MMIO_STATUS, status);

	mmio_write(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	uint32_t offered_low = mmio_read(VIRTIO_MMIO_DEVICE_FEATURES);
	mmio_write(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	uint32_t offered_high = mmio_read(VIRTIO_MMIO_DEVICE_FEATURES);
	if (!(offered_high & VIRTIO_F_VERSION_1_HIGH)) {
		fail("VIRTIO_F_VERSION_1 not offered, features[63:32]", offered_high);
		return -1;
	}
	if (!(offered_low & VIRTIO_BLK_F_FLUSH)) {
		fail("VIRTIO_BLK_F_FLUSH not offered, features[31:0]", offered_low);
		return -1;
	}
	/* FLUSH requests need VIRTIO_BLK_F_FLUSH negotiated (virtio 1.2 §5.2.6.2); nothing else is used. */
	mmio_write(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	mmio_write(VIRTIO_MMIO_DRIVER_FEATURES, VIRTIO_BLK_F_FLUSH);
	mmio_write(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	mmio_write(VIRTIO_MMIO_DRIVER_FEATURES, VIRTIO_F_VERSION_1_HIGH);
	status |= VIRTIO_STATUS_FEATURES_OK;
	mmio_write(VIRTIO_MMIO_STATUS, status);
	if (!(mmio_read(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK)) {
		fail("device refused FEATURES_OK, status", mmio_read(VIRTIO_MMIO_STATUS));
		return -1;
	}

	mmio_write(VIRTIO_MMIO_QUEUE_SEL, 0);
	if (mmio_read(VIRTIO_MMIO_QUEUE_READY) != 0) {
		fail("queue 0 ready before setup", 1);
		return -1;
	}
	uint32_t max = mmio_read(VIRTIO_MMIO_QUEUE_NUM_MAX);
	if (max < QUEUE_SIZE) {
		fail("queue 0 too small, QueueNumMax", max);
		return -1;
	}
	avail_ring.flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
	mmio_write(VIRTIO_MMIO_QUEUE_NUM, QUEUE_SIZE);
	mmio_write(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)(uint64_t)desc_table);
	mmio_write(VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)((uint64_t)desc_table >> 32));
	mmio_write(VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)(uint64_t)&avail_ring);
	mmio_write(VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (uint32_t)((uint64_t)&avail_ring >> 32));
	mmio_write(VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)(uint64_t)&used_ring);
	mmio_write(VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (uint32_t)((uint64_t)&used_ring >> 32));
	mmio_write(VIRTIO_MMIO_QUEUE_READY, 1);

	status |= VIRTIO_STATUS_DRIVER_OK;
	mmio_write(VIRTIO_MMIO_STATUS, status);
	if (mmio_read(VIRTIO_MMIO_STATUS) != status) {
		fail("device did not take DRIVER_OK, status", mmio_read(VIRTIO_MMIO_STATUS));
		return -1;
	}
	return 0;
}

/* capacity (le64, 512-byte sectors) at config offset 0, read as two 32-bit halves (virtio 1.2
 * §4.2.2.2) and retried until ConfigGeneration is the same before and after (§2.5.1). */
static uint64_t read_capacity(void)
{
	uint32_t generation, low, high;
	do {
		generation = mmio_read(VIRTIO_MMIO_CONFIG_GENERATION);
		low = mmio_read(VIRTIO_MMIO_CONFIG + VIRTIO_BLK_CONFIG_CAPACITY);
		high = mmio_read(VIRTIO_MMIO_CONFIG + VIRTIO_BLK_CONFIG_CAPACITY + 4);
	} while (mmio_read(VIRTIO_MMIO_CONFIG_GENERATION) != generation);
	return ((uint64_t)high << 32) | low;
}

static void set_desc(int index, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	desc_table[index] = (struct virtq_desc){ .addr = addr, .len = len, .flags = flags, .next = next };
}

/* Publishes chain `head` on the available ring, kicks queue 0, and polls the used ring for it.
 * Gives up (ok = 0) if the device sets DEVICE_NEEDS_RESET instead of completing it. */
static struct completion submit(uint16_t head)
{
	avail_ring.ring[next_avail % QUEUE_SIZE] = head;
	memory_barrier();		/* the ring entry before the idx that publishes it (§2.7.13.2) */
	avail_ring.idx = ++next_avail;
	memory_barrier();		/* the idx before the notification (§2.7.13.3) */
	mmio_write(VIRTIO_MMIO_QUEUE_NOTIFY, 0);

	for (uint32_t polls = 1; *(volatile uint16_t *)&used_ring.idx == next_used; polls++) {
		if (polls % POLLS_PER_STATUS_CHECK == 0 && (mmio_read(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET)) {
			fail("device needs reset, status", mmio_read(VIRTIO_MMIO_STATUS));
			return (struct completion){ 0, 0 };
		}
	}
	memory_barrier();		/* read the used entry only after the idx that published it */
	struct virtq_used_elem elem = used_ring.ring[next_used % QUEUE_SIZE];
	next_used++;
	if (elem.id != head) {
		fail("used ring returned another chain, id", elem.id);
		return (struct completion){ 0, 0 };
	}
	return (struct completion){ 1, elem.len };
}

/* One request through descriptors 0-2: header, optional data, status. Returns the status byte. */
static uint8_t block_request(uint32_t type, uint64_t sector, void *data, uint32_t data_len, struct completion *done)
{
	request_header = (struct virtio_blk_req_header){ .type = type, .sector = sector };
	request_status = STATUS_UNWRITTEN;
	uint16_t data_flags = type == VIRTIO_BLK_T_IN ? VIRTQ_DESC_F_WRITE : 0;
	if (data_len) {
		set_desc(0, (uint64_t)&request_header, sizeof(request_header), VIRTQ_DESC_F_NEXT, 1);
		set_desc(1, (uint64_t)data, data_len, data_flags | VIRTQ_DESC_F_NEXT, 2);
	} else {
		set_desc(0, (uint64_t)&request_header, sizeof(request_header), VIRTQ_DESC_F_NEXT, 2);
	}
	set_desc(2, (uint64_t)&request_status, 1, VIRTQ_DESC_F_WRITE, 0);
	*done = submit(0);
	return *(volatile uint8_t *)&request_status;
}

/* "PETASAN-PATTERN-" repeated, the last 16 bytes of each 512-byte sector "SECTOR-nnnnnnnn\n" with
 * the sector's number in decimal: test/integration/virtio-blk-guest.test.ts builds the same bytes. */
static void make_pattern(uint64_t first_sector)
{
	static const char unit[16] = "PETASAN-PATTERN-";
	static const char label[8] = "SECTOR-";
	for (int i = 0; i < PATTERN_BYTES; i++) {
		int in_sector = i % VIRTIO_BLK_SECTOR_SIZE;
		int tail = in_sector - (VIRTIO_BLK_SECTOR_SIZE - 16);
		uint64_t sector = first_sector + i / VIRTIO_BLK_SECTOR_SIZE;
		if (tail < 0)
			pattern[i] = (uint8_t)unit[i % 16];
		else if (tail < 7)
			pattern[i] = (uint8_t)label[tail];
		else if (tail < 15) {
			uint64_t divisor = 1;
			for (int d = tail; d < 14; d++)
				divisor *= 10;
			pattern[i] = (uint8_t)('0' + sector / divisor % 10);
		} else
			pattern[i] = '\n';
	}
}

/* The first differing byte of pattern and readback, or -1. */
static int first_difference(void)
{
	for (int i = 0; i < PATTERN_BYTES; i++)
		if (pattern[i] != readback[i])
			return i;
	return -1;
}

static void print_status_line(const char *what, uint8_t status, const struct completion *done)
{
	uart_puts("virtio-blk: ");
	uart_puts(what);
	uart_puts(", status ");
	uart_put_dec(status);
	uart_puts(", used len ");
	uart_put_dec(done->used_len);
	uart_puts("\n");
}

/* Reads the pattern sector back and says whether it matches. */
static void read_back_and_compare(const char *when)
{
	struct completion done;
	fill_bytes(readback, 0, PATTERN_BYTES);
	uint8_t status = block_request(VIRTIO_BLK_T_IN, PATTERN_SECTOR, readback, PATTERN_BYTES, &done);
	if (!done.ok)
		return;
	int difference = first_difference();
	uart_puts("virtio-blk: read ");
	uart_puts(when);
	uart_puts(difference < 0 ? " matches" : " differs at byte ");
	if (difference >= 0)
		uart_put_dec((uint64_t)difference);
	uart_puts(", status ");
	uart_put_dec(status);
	uart_puts(", used len ");
	uart_put_dec(done.used_len);
	uart_puts("\n");
}

static void write_pattern(void)
{
	struct completion done;
	make_pattern(PATTERN_SECTOR);
	uint8_t status = block_request(VIRTIO_BLK_T_OUT, PATTERN_SECTOR, pattern, PATTERN_BYTES, &done);
	if (!done.ok)
		return;
	if (status == VIRTIO_BLK_S_IOERR) {
		uart_puts("virtio-blk: write refused, status 1\n");
		return;
	}
	if (status != VIRTIO_BLK_S_OK) {
		print_status_line("write failed", status, &done);
		return;
	}
	status = block_request(VIRTIO_BLK_T_FLUSH, 0, 0, 0, &done);
	if (!done.ok)
		return;
	uart_puts("virtio-blk: wrote+flushed pattern, status ");
	uart_put_dec(status);
	uart_puts("\n");
	read_back_and_compare("back");
}

/* Two chains the device must complete without touching anything outside them and without failing
 * the device (petasan: VirtqChainFault, completed with used length 0). Descriptors 3-7 are theirs. */
static void submit_hostile_chains(void)
{
	struct completion done;
	request_header = (struct virtio_blk_req_header){ .type = VIRTIO_BLK_T_IN, .sector = 0 };

	/* A read whose data buffer lies outside guest RAM. */
	request_status = STATUS_UNWRITTEN;
	set_desc(3, (uint64_t)&request_header, sizeof(request_header), VIRTQ_DESC_F_NEXT, 4);
	set_desc(4, OUTSIDE_GUEST_RAM, VIRTIO_BLK_SECTOR_SIZE, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 5);
	set_desc(5, (uint64_t)&request_status, 1, VIRTQ_DESC_F_WRITE, 0);
	done = submit(3);
	if (!done.ok)
		return;
	print_status_line("hostile chain outside RAM completed", *(volatile uint8_t *)&request_status, &done);

	/* A chain whose two descriptors name each other: it never ends. */
	request_status = STATUS_UNWRITTEN;
	set_desc(6, (uint64_t)&request_header, sizeof(request_header), VIRTQ_DESC_F_NEXT, 7);
	set_desc(7, (uint64_t)readback, VIRTIO_BLK_SECTOR_SIZE, VIRTQ_DESC_F_NEXT, 6);
	done = submit(6);
	if (!done.ok)
		return;
	print_status_line("hostile looping chain completed", *(volatile uint8_t *)&request_status, &done);

	read_back_and_compare("after hostile chains");
}

/* A line from COM1, polled (no interrupts), without its '\n'; bytes past COMMAND_MAX - 1 are dropped. */
static void read_line(char *line)
{
	int n = 0;
	for (;;) {
		while (!(inb(COM1 + 5) & LSR_DR))
			;
		char c = (char)inb(COM1);
		if (c == '\n' || c == '\r')
			break;
		if (n < COMMAND_MAX - 1)
			line[n++] = c;
	}
	line[n] = 0;
}

/* The decimal number at *text, advancing past it and the spaces after it. */
static uint64_t take_number(const char **text)
{
	uint64_t value = 0;
	while (**text >= '0' && **text <= '9')
		value = value * 10 + (uint64_t)(*(*text)++ - '0');
	while (**text == ' ')
		(*text)++;
	return value;
}

static void phase_line(uint64_t phase, const char *what)
{
	uart_puts("virtio-blk: phase ");
	uart_put_dec(phase);
	uart_puts(" ");
	uart_puts(what);
	uart_puts("\n");
}

/* `count` reads of `bytes` at sector 0, one request at a time: each is one op and `bytes` bytes for a
 * rate limiter. 0 on success. */
static int timed_reads(uint64_t count, uint32_t bytes)
{
	for (uint64_t i = 0; i < count; i++) {
		struct completion done;
		uint8_t status = block_request(VIRTIO_BLK_T_IN, 0, phase_buffer, bytes, &done);
		if (!done.ok || status != VIRTIO_BLK_S_OK) {
			fail("timed read, status", status);
			return -1;
		}
	}
	return 0;
}

/* The phases the host asks for on COM1, until it asks for 0 reads (or one fails). */
static void timed_phases(void)
{
	char line[COMMAND_MAX];
	for (uint64_t phase = 1;; phase++) {
		phase_line(phase, "ready");
		read_line(line);
		const char *text = line;
		uint64_t count = take_number(&text);
		uint64_t bytes = take_number(&text);
		if (count == 0)
			return;
		if (bytes == 0 || bytes > READ_MAX_BYTES || bytes % VIRTIO_BLK_SECTOR_SIZE) {
			fail("phase read size, bytes", bytes);
			return;
		}
		phase_line(phase, "start");
		if (timed_reads(count, (uint32_t)bytes))
			return;
		phase_line(phase, "done");
	}
}

void main(const uint8_t *zero_page)
{
	int hostile = has_word(kernel_cmdline(zero_page), "hostile");
	int phases = has_word(kernel_cmdline(zero_page), "phases");
	if (init_device() == 0) {
		uart_puts("virtio-blk: capacity ");
		uart_put_dec(read_capacity());
		uart_puts(" sectors\n");
		if (phases) {
			timed_phases();
		} else {
			write_pattern();
			if (hostile)
				submit_hostile_chains();
		}
	}
	uart_puts("virtio-blk: done\n");
	for (;;)
		__asm__ volatile("cli; hlt");
}
