/**
 * The petasan side of the block benchmark: a VirtioBlock over a FileDisk, behind an MmioTransport, in
 * real host-mmap'd guest RAM (so the device's preadv/pwritev land in real host pages), driven by a
 * host-side stand-in for Linux's virtio_blk driver that keeps the request queue full.
 *
 * What the stand-in does, and why it is cheap: like virtio_blk with VIRTIO_F_INDIRECT_DESC, every
 * request is one ring descriptor pointing at an indirect table (header, data segments, status), so
 * `queueSize` requests are in flight (virtio 1.2 §2.7.5.3). Each ring slot owns its table, header,
 * data buffer and status byte for the whole pass, so publishing a request only rewrites the header's
 * sector and the status byte, and reaping it only reads the used entry and the status byte. A real
 * guest does that work on its own vCPU; here it runs on the same thread, so the share of the pass's
 * wall time spent inside transport.notify (-> VirtioBlock.processQueue) is reported too. That share
 * is taken with performance.now(), not CPU time: getrusage costs ~30 us here, too much per kick.
 */
import { guestMemoryOver, mapAnonymous, unmap } from "../src/memory/host-mapping.js";
import type { GuestMemory } from "../src/memory/guest-memory.js";
import { FileDisk, MmioTransport, VirtioBlock } from "../src/devices/virtio/index.js";
import { CountingInterrupt, F_INDIRECT, F_NEXT, F_WRITE, FakeMmioDriver, FakeVirtqueue } from "../src/devices/virtio/testing/fake-driver.js";
import { BenchError } from "./bench-error.js";
import { performance } from "node:perf_hooks";
import { Stopwatch, type Timing } from "./blk-clock.js";

/** Request types and status values, virtio 1.2 §5.2.6 (linux/virtio_blk.h). */
const VIRTIO_BLK_T_IN = 0;
const VIRTIO_BLK_T_OUT = 1;
const VIRTIO_BLK_T_FLUSH = 4;
const VIRTIO_BLK_S_OK = 0;
/** A status value the device never writes, put in before each request so a stale OK cannot pass. */
const STATUS_UNSET = 0xff;
/** struct virtio_blk_req header: le32 type, le32 reserved, le64 sector (virtio 1.2 §5.2.6). */
const HEADER_SIZE = 16;
const HEADER_SECTOR = 8;
/** Request offsets are in 512-byte sectors (virtio 1.2 §5.2.6). */
const SECTOR_SIZE = 512;
/** struct virtq_desc size (virtio 1.2 §2.7.5). */
const DESCRIPTOR_SIZE = 16;
/** x86 page: data buffers start on one, as the guest's page-cache pages do. */
const PAGE_SIZE = 4096;
/** Device status after a successful init: ACKNOWLEDGE|DRIVER|FEATURES_OK|DRIVER_OK (virtio 1.2 §2.1). */
const STATUS_LIVE = 0xf;

export type Direction = "read" | "write";

export interface GuestRigOptions {
  diskPath: string;
  /** Descriptors in the request queue = requests in flight (each is one indirect descriptor). */
  queueSize: number;
  requestBytes: number;
  /** Size of each data descriptor: requestBytes for one contiguous buffer, 4096 for page-cache pages. */
  segmentBytes: number;
}

export interface DevicePassTiming {
  /** The whole pass, stand-in driver included. */
  total: Timing;
  /** Wall time inside transport.notify (the device's processQueue), without the stand-in driver's work. */
  deviceWallNs: number;
}

/** Where one ring slot's request lives in guest memory. */
interface Slot {
  table: number;
  header: number;
  data: number;
  status: number;
}

/** Hands out guest-physical space upwards from 0, aligned. */
class GuestAllocator {
  used = 0;
  take(len: number, align: number): number {
    const at = Math.ceil(this.used / align) * align;
    this.used = at + len;
    return at;
  }
}

export class GuestRig {
  private readonly mem: GuestMemory;
  private readonly hostAddr: bigint;
  private readonly ramBytes: number;
  private readonly disk: FileDisk;
  private readonly device: VirtioBlock;
  private readonly transport: MmioTransport;
  private readonly queue: FakeVirtqueue;
  private readonly slots: Slot[];
  private readonly segments: number;

  constructor(private readonly options: GuestRigOptions) {
    const { queueSize, requestBytes, segmentBytes } = options;
    if (requestBytes % segmentBytes !== 0 || requestBytes % SECTOR_SIZE !== 0) {
      throw new BenchError(`request of ${requestBytes} bytes is not whole ${segmentBytes}-byte segments of whole sectors`);
    }
    this.segments = requestBytes / segmentBytes;
    const tableBytes = (this.segments + 2) * DESCRIPTOR_SIZE;

    // Rings, then every slot's small control parts together, then the page-aligned data buffers.
    const layout = new GuestAllocator();
    const ringBase = layout.take(FakeVirtqueue.footprint(queueSize), PAGE_SIZE);
    const control = Array.from({ length: queueSize }, () => ({
      table: layout.take(tableBytes, DESCRIPTOR_SIZE),
      header: layout.take(HEADER_SIZE, HEADER_SIZE),
      status: layout.take(1, 1),
    }));
    const slots = control.map((c) => ({ ...c, data: layout.take(requestBytes, PAGE_SIZE) }));
    this.ramBytes = Math.ceil(layout.used / PAGE_SIZE) * PAGE_SIZE;

    this.hostAddr = mapAnonymous(this.ramBytes);
    this.mem = guestMemoryOver([{ guestAddr: 0, size: this.ramBytes, hostAddr: this.hostAddr }]);
    this.disk = FileDisk.open(options.diskPath);
    this.device = new VirtioBlock({ disk: this.disk, name: "virtio-blk bench" });
    this.transport = new MmioTransport(this.device, { mem: this.mem, interrupt: new CountingInterrupt(), name: "virtio-blk bench" });
    this.queue = new FakeVirtqueue(this.mem, queueSize, ringBase);
    this.slots = slots;
    // Touch every page now, so neither side pays first-touch page faults inside the timed pass.
    this.mem.fill(0, this.ramBytes, 0x5a);

    const status = new FakeMmioDriver(this.transport).initialize([this.queue]);
    if (status !== STATUS_LIVE) throw new BenchError(`virtio-blk did not come up: device status 0x${status.toString(16)}`);
    slots.forEach((s, i) => this.queue.setDescriptor(i, s.table, tableBytes, F_INDIRECT, 0));
  }

  /** Reads or writes the first `bytes` of the disk in order, `requestBytes` per request, the queue kept full. */
  pass(direction: Direction, bytes: number): DevicePassTiming {
    const { requestBytes, queueSize } = this.options;
    if (bytes % requestBytes !== 0 || bytes > this.disk.sizeBytes) throw new BenchError(`${bytes} bytes is not whole requests inside the disk`);
    this.prepareSlots(direction);
    const requests = bytes / requestBytes;
    const sectorsPerRequest = requestBytes / SECTOR_SIZE;
    const expectedUsedLen = direction === "read" ? requestBytes + 1 : 1;
    const free: number[] = Array.from({ length: queueSize }, (_, i) => queueSize - 1 - i);
    let issued = 0;
    let completed = 0;
    let deviceWallNs = 0;

    const pass = new Stopwatch();
    while (completed < requests) {
      for (; issued < requests && free.length > 0; issued++) {
        const slot = free.pop()!;
        this.mem.writeU64(this.slots[slot].header + HEADER_SECTOR, BigInt(issued * sectorsPerRequest));
        this.mem.writeU8(this.slots[slot].status, STATUS_UNSET);
        this.queue.publish(slot);
      }
      const kick = performance.now();
      this.transport.notify(0);
      deviceWallNs += (performance.now() - kick) * 1e6;
      const used = this.queue.takeUsed();
      if (used.length === 0) throw new BenchError(`virtio-blk completed nothing after ${completed} of ${requests} requests (device status 0x${this.transport.deviceStatus.toString(16)})`);
      for (const { id, len } of used) this.reap(id, len, expectedUsedLen);
      completed += used.length;
      free.push(...used.map((u) => u.id));
    }
    return { total: pass.elapsed(), deviceWallNs };
  }

  /**
   * Sends one VIRTIO_BLK_T_FLUSH (the guest's fsync) through the queue and waits for it; returns the time
   * it took. Uses slot 0's table, which the next pass() rewrites.
   */
  flush(): Timing {
    const s = this.slots[0];
    this.queue.setDescriptor(0, s.header, HEADER_SIZE, F_NEXT, 1, s.table);
    this.queue.setDescriptor(1, s.status, 1, F_WRITE, 0, s.table);
    this.queue.setDescriptor(0, s.table, 2 * DESCRIPTOR_SIZE, F_INDIRECT, 0);
    this.mem.writeU32(s.header, VIRTIO_BLK_T_FLUSH);
    this.mem.writeU8(s.status, STATUS_UNSET);
    const clock = new Stopwatch();
    this.queue.publish(0);
    this.transport.notify(0);
    const used = this.queue.takeUsed();
    const elapsed = clock.elapsed();
    if (used.length !== 1) throw new BenchError(`virtio-blk answered a flush with ${used.length} used entries`);
    this.reap(used[0].id, used[0].len, 1);
    return elapsed;
  }

  /** Copies `len` bytes of slot `slot`'s data buffer out of guest memory (to check what a read brought in). */
  slotData(slot: number, len: number): Uint8Array {
    return this.mem.read(this.slots[slot].data, len);
  }

  close(): void {
    this.disk.close();
    unmap(this.hostAddr, this.ramBytes);
  }

  /** Writes each slot's indirect table and header type for this direction. */
  private prepareSlots(direction: Direction): void {
    const { segmentBytes } = this.options;
    const dataFlags = F_NEXT | (direction === "read" ? F_WRITE : 0);
    this.slots.forEach((s, i) => {
      this.queue.setDescriptor(0, s.header, HEADER_SIZE, F_NEXT, 1, s.table);
      for (let seg = 0; seg < this.segments; seg++) {
        this.queue.setDescriptor(1 + seg, s.data + seg * segmentBytes, segmentBytes, dataFlags, 2 + seg, s.table);
      }
      this.queue.setDescriptor(1 + this.segments, s.status, 1, F_WRITE, 0, s.table);
      this.queue.setDescriptor(i, s.table, (this.segments + 2) * DESCRIPTOR_SIZE, F_INDIRECT, 0);
      this.mem.writeU32(s.header, direction === "read" ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT);
    });
  }

  /** Checks one completion the way virtio_blk's virtblk_done does: the used length and the status byte. */
  private reap(slot: number, len: number, expectedLen: number): void {
    const status = this.mem.readU8(this.slots[slot].status);
    if (status !== VIRTIO_BLK_S_OK || len !== expectedLen) {
      throw new BenchError(`virtio-blk request in slot ${slot} ended with status ${status}, used length ${len} (expected ${VIRTIO_BLK_S_OK}, ${expectedLen})`);
    }
  }
}
