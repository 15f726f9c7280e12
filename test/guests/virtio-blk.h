/* The virtio pieces the virtio-blk test guest drives: virtio-mmio registers, device status, split
 * virtqueue layout and virtio-blk requests, all from the virtio 1.2 spec (section named per group). */
#ifndef VIRTIO_BLK_GUEST_H
#define VIRTIO_BLK_GUEST_H

#include <stdint.h>

/* virtio-mmio register offsets, §4.2.2 "MMIO Device Register Layout". */
#define VIRTIO_MMIO_MAGIC_VALUE 0x000
#define VIRTIO_MMIO_VERSION 0x004
#define VIRTIO_MMIO_DEVICE_ID 0x008
#define VIRTIO_MMIO_DEVICE_FEATURES 0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES 0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL 0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX 0x034
#define VIRTIO_MMIO_QUEUE_NUM 0x038
#define VIRTIO_MMIO_QUEUE_READY 0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x050
#define VIRTIO_MMIO_STATUS 0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW 0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH 0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW 0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH 0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW 0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH 0x0a4
#define VIRTIO_MMIO_CONFIG_GENERATION 0x0fc
#define VIRTIO_MMIO_CONFIG 0x100

#define VIRTIO_MMIO_MAGIC 0x74726976	/* "virt", little-endian */
#define VIRTIO_MMIO_VERSION_MODERN 2	/* version 1 is the legacy interface */

/* Device ID, §5 "Device Types". */
#define VIRTIO_ID_BLOCK 2

/* Device status bits, §2.1. */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 0x40

/* Feature bits: VIRTIO_F_VERSION_1 is bit 32 (§6), i.e. bit 0 of the high word; VIRTIO_BLK_F_FLUSH is bit 9 (§5.2.3). */
#define VIRTIO_F_VERSION_1_HIGH (1u << 0)
#define VIRTIO_BLK_F_FLUSH (1u << 9)

/* Split virtqueue, §2.7.5 (descriptor table), §2.7.6 (available ring), §2.7.8 (used ring). */
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* The guest's queue size: small, a power of two (§2.7), at most petasan's QueueNumMax. */
#define QUEUE_SIZE 8

/* used_event and avail_event are left out: VIRTIO_F_EVENT_IDX is not negotiated. */
struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[QUEUE_SIZE];
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[QUEUE_SIZE];
};

/* virtio-blk, §5.2.4 (config: le64 capacity at offset 0) and §5.2.6 (requests). */
#define VIRTIO_BLK_CONFIG_CAPACITY 0
#define VIRTIO_BLK_SECTOR_SIZE 512
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1

struct virtio_blk_req_header {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

#endif
