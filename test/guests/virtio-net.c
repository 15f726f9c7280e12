/* virtio-net: a minimal interrupt-driven driver for the first virtio-mmio device, for timing the net
 * device's rate limiters (test/integration/net-rate-limit.test.ts). It negotiates only
 * VIRTIO_F_VERSION_1 (so every buffer starts with the 12-byte virtio_net_hdr_v1, virtio 1.2 §5.1.6),
 * gives the device 256 receive buffers, and obeys one-line commands read from COM1:
 *   t<N>  sends N frames of 1514 bytes (broadcast, ethertype 0x88b5, IEEE 802 Local Experimental
 *         Ethertype 1), then prints "net: sent N";
 *   r<N>  prints "net: receiving N", counts received frames of that ethertype, prints "net: rx first"
 *         at the first and "net: received N" at the Nth;
 *   q     resets the machine (the VMM exits 0).
 * The guest's ring-0 code may be emulated (~1 µs per instruction, KVM-HERE.md), so the per-frame work
 * is a few stores, and between events the guest sleeps in `sti; hlt` instead of polling: the device's
 * used-buffer interrupt (GSI 5 through the 8259, as echo.c does for COM1) and COM1's receive interrupt
 * wake it. The register layout and split-ring descriptor come from virtio-blk.h (virtio 1.2 §4.2.2). */
#include "guest64.h"
#include "interrupts.h"
#include "virtio-blk.h"

/* The first device window and its GSI (src/vmm/device-manager.ts): the only device these runs have. */
#define VIRTIO_MMIO_BASE 0xd0000000ul
#define VIRTIO_NET_IRQ 5
#define VIRTIO_MMIO_INTERRUPT_ACK 0x064
#define VIRTIO_MMIO_INT_VRING 1
#define VIRTIO_MMIO_INT_CONFIG 2
#define VIRTIO_ID_NET 1

#define RX_QUEUE 0
#define TX_QUEUE 1
/* petasan's QueueNumMax: a full ring holds more than 100 ms of frames at the rates the test sets, so
 * the limiter, not this guest, decides when frames move (REFILL_TIMER_MS is 100 ms). */
#define NET_QUEUE_SIZE 256
#define NET_HDR_SIZE 12
#define FRAME_BYTES 1514
#define RX_BUFFER_BYTES 2048
#define ETHERTYPE_OFFSET 12
#define TEST_ETHERTYPE 0x88b5

#define COM1_IRQ 4
struct net_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[NET_QUEUE_SIZE];
};

struct net_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[NET_QUEUE_SIZE];
};

struct net_queue {
	struct virtq_desc desc[NET_QUEUE_SIZE] __attribute__((aligned(4096)));
	struct net_avail avail __attribute__((aligned(4096)));
	struct net_used used __attribute__((aligned(4096)));
	uint16_t next_avail;	/* free-running, as avail.idx */
	uint16_t next_used;	/* used entries this driver has looked at */
};

static struct net_queue rxq, txq;
/* Every TX descriptor points at this one frame: the device only reads it. */
static uint8_t tx_frame[NET_HDR_SIZE + FRAME_BYTES] __attribute__((aligned(4096)));
static uint8_t rx_buffers[NET_QUEUE_SIZE][RX_BUFFER_BYTES] __attribute__((aligned(4096)));


static inline uint32_t mmio_read(uint32_t reg)
{
	return *(volatile uint32_t *)(VIRTIO_MMIO_BASE + reg);
}

static inline void mmio_write(uint32_t reg, uint32_t value)
{
	*(volatile uint32_t *)(VIRTIO_MMIO_BASE + reg) = value;
}

static inline void memory_barrier(void)
{
	__asm__ volatile("mfence" ::: "memory");
}

void irq_entry(void);
void spurious_irq_entry(void);

/* The handlers only acknowledge: main() does the work with interrupts off, after each wake-up. */
__asm__(
	".text\n"
	".globl irq_entry\n"
	"irq_entry:\n"
	"	push %rax; push %rcx; push %rdx; push %rsi; push %rdi\n"
	"	push %r8; push %r9; push %r10; push %r11\n"
	"	cld\n"
	"	call acknowledge_interrupts\n"
	"	pop %r11; pop %r10; pop %r9; pop %r8\n"
	"	pop %rdi; pop %rsi; pop %rdx; pop %rcx; pop %rax\n"
	"	iretq\n"
	".globl spurious_irq_entry\n"
	"spurious_irq_entry:\n"
	"	iretq\n");

/* Every VM exit costs ~9 µs here, and a rate-limited RX can bring an interrupt per frame: the handler makes
 * one exit, the ACK of both interrupt causes (§4.2.2: acking a clear bit does nothing), without reading
 * InterruptStatus first; the 8259 ends its interrupts itself (auto-EOI, ICW4 bit 1). */
void acknowledge_interrupts(void)
{
	mmio_write(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG);
}

/* IDT, LAPIC virtual wire, 8259s with IRQ 4 (COM1) and IRQ 5 (virtio-net) unmasked: as echo.c, but auto-EOI. */
static void init_interrupts(void)
{
	set_gate(IRQ_BASE_VECTOR + COM1_IRQ, irq_entry);
	set_gate(IRQ_BASE_VECTOR + VIRTIO_NET_IRQ, irq_entry);
	set_gate(IRQ_BASE_VECTOR + 7, spurious_irq_entry);
	load_idt();
	lapic_virtual_wire();
	init_pics(0x03, (uint8_t)~((1 << COM1_IRQ) | (1 << VIRTIO_NET_IRQ)));	/* ICW4: auto-EOI on the master */
	outb(COM1 + 3, 0x03);	/* LCR: 8N1 */
	outb(COM1 + 2, 0x01);	/* FCR: FIFOs on */
	outb(COM1 + 4, 0x0b);	/* MCR: DTR, RTS, OUT2 */
	outb(COM1 + 1, 0x01);	/* IER: received data available */
}

/* Sleeps until an interrupt; called with interrupts off, returns with them off. `sti` holds interrupts
 * back for one more instruction, so one that became pending after the caller's check still wakes hlt. */
static inline void sleep_until_interrupt(void)
{
	__asm__ volatile("sti; hlt; cli" ::: "memory");
}

static void fail(const char *what, uint64_t value)
{
	uart_puts("net: FAILED: ");
	uart_puts(what);
	uart_puts(" ");
	uart_put_hex(value, 8);
	uart_puts("\n");
}

static void setup_queue(uint32_t index, struct net_queue *q)
{
	mmio_write(VIRTIO_MMIO_QUEUE_SEL, index);
	mmio_write(VIRTIO_MMIO_QUEUE_NUM, NET_QUEUE_SIZE);
	mmio_write(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)(uint64_t)q->desc);
	mmio_write(VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)((uint64_t)q->desc >> 32));
	mmio_write(VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)(uint64_t)&q->avail);
	mmio_write(VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (uint32_t)((uint64_t)&q->avail >> 32));
	mmio_write(VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)(uint64_t)&q->used);
	mmio_write(VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (uint32_t)((uint64_t)&q->used >> 32));
	mmio_write(VIRTIO_MMIO_QUEUE_READY, 1);
}

/* Device initialisation, virtio 1.2 §3.1.1 and §4.2.3. 0 on success. */
static int init_device(void)
{
	if (mmio_read(VIRTIO_MMIO_MAGIC_VALUE) != VIRTIO_MMIO_MAGIC || mmio_read(VIRTIO_MMIO_VERSION) != VIRTIO_MMIO_VERSION_MODERN) {
		fail("no version 2 virtio-mmio device, magic", mmio_read(VIRTIO_MMIO_MAGIC_VALUE));
		return -1;
	}
	if (mmio_read(VIRTIO_MMIO_DEVICE_ID) != VIRTIO_ID_NET) {
		fail("not a network device, device id", mmio_read(VIRTIO_MMIO_DEVICE_ID));
		return -1;
	}
	mmio_write(VIRTIO_MMIO_STATUS, 0);
	/* One status bit at a time, in the order of §3.1.1 (petasan refuses skipped steps). */
	uint32_t status = VIRTIO_STATUS_ACKNOWLEDGE;
	mmio_write(VIRTIO_MMIO_STATUS, status);
	status |= VIRTIO_STATUS_DRIVER;
	mmio_write(VIRTIO_MMIO_STATUS, status);
	mmio_write(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	if (!(mmio_read(VIRTIO_MMIO_DEVICE_FEATURES) & VIRTIO_F_VERSION_1_HIGH)) {
		fail("VIRTIO_F_VERSION_1 not offered", 0);
		return -1;
	}
	mmio_write(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	mmio_write(VIRTIO_MMIO_DRIVER_FEATURES, 0);
	mmio_write(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	mmio_write(VIRTIO_MMIO_DRIVER_FEATURES, VIRTIO_F_VERSION_1_HIGH);
	status |= VIRTIO_STATUS_FEATURES_OK;
	mmio_write(VIRTIO_MMIO_STATUS, status);
	if (!(mmio_read(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK)) {
		fail("device refused FEATURES_OK, status", mmio_read(VIRTIO_MMIO_STATUS));
		return -1;
	}
	for (uint32_t index = RX_QUEUE; index <= TX_QUEUE; index++) {
		mmio_write(VIRTIO_MMIO_QUEUE_SEL, index);
		if (mmio_read(VIRTIO_MMIO_QUEUE_NUM_MAX) < NET_QUEUE_SIZE) {
			fail("queue too small, QueueNumMax", mmio_read(VIRTIO_MMIO_QUEUE_NUM_MAX));
			return -1;
		}
	}

	/* Every receive buffer is on offer from the start; each goes back as soon as it is looked at. */
	for (int i = 0; i < NET_QUEUE_SIZE; i++) {
		rxq.desc[i] = (struct virtq_desc){ .addr = (uint64_t)rx_buffers[i], .len = RX_BUFFER_BYTES, .flags = VIRTQ_DESC_F_WRITE };
		rxq.avail.ring[i] = (uint16_t)i;
		txq.desc[i] = (struct virtq_desc){ .addr = (uint64_t)tx_frame, .len = sizeof(tx_frame) };
	}
	rxq.next_avail = NET_QUEUE_SIZE;
	rxq.avail.idx = NET_QUEUE_SIZE;
	setup_queue(RX_QUEUE, &rxq);
	setup_queue(TX_QUEUE, &txq);

	status |= VIRTIO_STATUS_DRIVER_OK;
	mmio_write(VIRTIO_MMIO_STATUS, status);
	if (mmio_read(VIRTIO_MMIO_STATUS) != status) {
		fail("device did not take DRIVER_OK, status", mmio_read(VIRTIO_MMIO_STATUS));
		return -1;
	}
	mmio_write(VIRTIO_MMIO_QUEUE_NOTIFY, RX_QUEUE);
	return 0;
}

/* Publishes the entries added since the last call and kicks the queue (virtio 1.2 §2.7.13). */
static void publish(struct net_queue *q, uint32_t index)
{
	memory_barrier();
	q->avail.idx = q->next_avail;
	memory_barrier();
	mmio_write(VIRTIO_MMIO_QUEUE_NOTIFY, index);
}

static inline uint16_t used_idx(struct net_queue *q)
{
	return *(volatile uint16_t *)&q->used.idx;
}

/* The frame every TX descriptor sends: a zeroed virtio_net_hdr_v1 (no offloads), then Ethernet
 * broadcast from a locally administered address with the test ethertype; the payload is zeros. */
static void make_tx_frame(void)
{
	uint8_t *frame = tx_frame + NET_HDR_SIZE;
	for (int i = 0; i < 6; i++)
		frame[i] = 0xff;
	frame[6] = 0x02;
	frame[11] = 0x01;
	frame[ETHERTYPE_OFFSET] = TEST_ETHERTYPE >> 8;
	frame[ETHERTYPE_OFFSET + 1] = TEST_ETHERTYPE & 0xff;
}

/* Sends `count` frames, keeping the ring as full as it goes: descriptor `n % 256` carries frame n,
 * free again once frame n - 256 is used (petasan completes TX chains in order). */
static void transmit(uint32_t count)
{
	uint32_t posted = 0, done = 0;
	while (done < count) {
		if (posted < count && posted - done < NET_QUEUE_SIZE) {
			while (posted < count && posted - done < NET_QUEUE_SIZE) {
				txq.avail.ring[txq.next_avail % NET_QUEUE_SIZE] = (uint16_t)(txq.next_avail % NET_QUEUE_SIZE);
				txq.next_avail++;
				posted++;
			}
			publish(&txq, TX_QUEUE);
		}
		while (used_idx(&txq) == txq.next_used)
			sleep_until_interrupt();
		uint16_t now = used_idx(&txq);
		done += (uint16_t)(now - txq.next_used);
		txq.next_used = now;
	}
	uart_puts("net: sent ");
	uart_put_dec(count);
	uart_puts("\n");
}

/* Used RX buffers are offered again in batches of this many, one notification each: the device never runs
 * short (3/4 of the ring stays on offer) and the guest makes one exit per batch instead of one per frame. */
#define RX_REFILL_BATCH 64
static uint32_t rx_unpublished;

/* Counts `count` frames of the test ethertype; others (none are expected) are given back uncounted. */
static void receive(uint32_t count)
{
	uint32_t got = 0;
	uart_puts("net: receiving ");
	uart_put_dec(count);
	uart_puts("\n");
	while (got < count) {
		while (used_idx(&rxq) == rxq.next_used)
			sleep_until_interrupt();
		uint16_t now = used_idx(&rxq);
		memory_barrier();
		for (; rxq.next_used != now; rxq.next_used++) {
			struct virtq_used_elem elem = rxq.used.ring[rxq.next_used % NET_QUEUE_SIZE];
			const uint8_t *frame = rx_buffers[elem.id % NET_QUEUE_SIZE] + NET_HDR_SIZE;
			if (elem.len >= NET_HDR_SIZE + ETHERTYPE_OFFSET + 2 &&
			    frame[ETHERTYPE_OFFSET] == (TEST_ETHERTYPE >> 8) && frame[ETHERTYPE_OFFSET + 1] == (TEST_ETHERTYPE & 0xff)) {
				if (++got == 1)
					uart_puts("net: rx first\n");
			}
			rxq.avail.ring[rxq.next_avail % NET_QUEUE_SIZE] = (uint16_t)elem.id;
			rxq.next_avail++;
			rx_unpublished++;
		}
		if (rx_unpublished >= RX_REFILL_BATCH) {
			publish(&rxq, RX_QUEUE);
			rx_unpublished = 0;
		}
	}
	uart_puts("net: received ");
	uart_put_dec(got);
	uart_puts("\n");
}

/* One command line from COM1: a letter and a decimal number, ended by '\n'. */
static char read_command(uint32_t *number)
{
	char letter = 0;
	*number = 0;
	for (;;) {
		while (!(inb(COM1 + 5) & LSR_DR))
			sleep_until_interrupt();
		char c = (char)inb(COM1);
		if (c == '\n')
			return letter;
		if (c >= '0' && c <= '9')
			*number = *number * 10 + (uint32_t)(c - '0');
		else if (c != '\r' && c != ' ')
			letter = c;
	}
}

void main(void)
{
	init_interrupts();
	make_tx_frame();
	if (init_device() != 0) {
		uart_puts("net: done\n");
		reset_machine();
	}
	uart_puts("net: ready\n");
	for (;;) {
		uint32_t number;
		char command = read_command(&number);
		if (command == 't')
			transmit(number);
		else if (command == 'r')
			receive(number);
		else if (command == 'q')
			reset_machine();
		else
			fail("unknown command", (uint64_t)(uint8_t)command);
	}
}
