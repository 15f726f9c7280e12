/**
 * The device side of one split virtqueue (virtio 1.2 §2.7): takes chains from the available
 * ring, returns them on the used ring, and decides when the driver wants an interrupt.
 */
import type { GuestMemory } from "../../../memory/guest-memory.js";
import { DESCRIPTOR_SIZE, DescriptorChain, MAX_QUEUE_SIZE } from "./descriptor-chain.js";
import { memoryFence } from "./memory-fence.js";
import { VirtqError } from "./virtq-error.js";

/** Where the driver put the three parts of the queue, and how many entries it has. */
export interface QueueLayout {
  size: number;
  descTable: number;
  availRing: number;
  usedRing: number;
}

/** The negotiated features that change how the rings are read. */
export interface QueueFeatures {
  /** VIRTIO_F_INDIRECT_DESC (bit 28). */
  indirect: boolean;
  /** VIRTIO_F_EVENT_IDX (bit 29). */
  eventIdx: boolean;
}

// Ring layouts, virtio 1.2 §2.7.6 and §2.7.8: le16 flags, le16 idx, then the ring, then the event field.
const RING_HEADER = 4;
const AVAIL_ENTRY = 2;
const USED_ENTRY = 8;
const EVENT_FIELD = 2;
// Alignment requirements, virtio 1.2 §2.7 (table "Alignment ... Descriptor Table 16, Available Ring 2, Used Ring 4").
const DESC_ALIGN = 16;
const AVAIL_ALIGN = 2;
const USED_ALIGN = 4;
/** VIRTQ_AVAIL_F_NO_INTERRUPT, virtio 1.2 §2.7.7. */
const AVAIL_F_NO_INTERRUPT = 1;

const U16 = 0x1_0000;

export class Queue {
  readonly size: number;
  private readonly layout: QueueLayout;
  /** Next avail ring slot the device will read (free-running u16, like the driver's idx). */
  private nextAvail = 0;
  /** The avail idx as last read from the guest: entries up to it are known to be published. */
  private availIdx = 0;
  /** Next used ring slot the device will write (free-running u16). */
  private nextUsed = 0;
  /** used idx when the driver was last interrupted (or asked about), for vring_need_event. */
  private signalledUsed: number | null = null;
  private addedSinceCheck = 0;
  private brokenBy: VirtqError | null = null;

  /** Checks the layout against the spec and guest RAM; throws VirtqError("queue-layout"). */
  constructor(private readonly mem: GuestMemory, layout: QueueLayout, readonly features: QueueFeatures, maxSize = MAX_QUEUE_SIZE) {
    const { size, descTable, availRing, usedRing } = layout;
    if (!Number.isInteger(size) || size < 1 || size > maxSize || (size & (size - 1)) !== 0) {
      throw new VirtqError("queue-layout", `queue size ${size} is not a power of two between 1 and ${maxSize}`);
    }
    const parts: [string, number, number, number][] = [
      ["descriptor table", descTable, DESC_ALIGN, size * DESCRIPTOR_SIZE],
      ["available ring", availRing, AVAIL_ALIGN, RING_HEADER + size * AVAIL_ENTRY + EVENT_FIELD],
      ["used ring", usedRing, USED_ALIGN, RING_HEADER + size * USED_ENTRY + EVENT_FIELD],
    ];
    for (const [what, addr, align, len] of parts) {
      if (addr % align !== 0) throw new VirtqError("queue-layout", `${what} at 0x${addr.toString(16)} is not ${align}-byte aligned`);
      if (!mem.contains(addr, len)) throw new VirtqError("queue-layout", `${what} 0x${addr.toString(16)}+0x${len.toString(16)} is outside guest RAM`);
    }
    this.size = size;
    this.layout = { ...layout };
  }

  /**
   * The next available chain, or null when the driver has published nothing new. Throws a
   * VirtqError with `ringBroken` when the avail ring is corrupt; the queue stays broken after that.
   */
  pop(): DescriptorChain | null {
    if (this.brokenBy) throw this.brokenBy;
    if (this.nextAvail === this.availIdx && !this.refreshAvailIdx()) return null;
    // Read the ring entry only after the idx that published it (virtio 1.2 §2.7.13.3).
    memoryFence();
    const slot = this.layout.availRing + RING_HEADER + (this.nextAvail % this.size) * AVAIL_ENTRY;
    const head = this.mem.readU16(slot);
    if (head >= this.size) return this.fail(new VirtqError("head-index", `avail ring entry ${this.nextAvail % this.size} names descriptor ${head}, past the table of ${this.size}`));
    this.nextAvail = (this.nextAvail + 1) % U16;
    return new DescriptorChain(this.mem, this.layout.descTable, this.size, head, this.features.indirect);
  }

  /** Gives back the chain the last pop() returned, e.g. when a net device had no frame to put in it. */
  undoPop(): void {
    this.nextAvail = (this.nextAvail + U16 - 1) % U16;
  }

  /** Puts chain `head` on the used ring with `len` bytes written into it, and publishes it. */
  addUsed(head: number, len: number): void {
    if (!Number.isInteger(head) || head < 0 || head >= this.size || !Number.isInteger(len) || len < 0 || len > 0xffff_ffff) {
      throw new VirtqError("used-entry", `used entry (head ${head}, len ${len}) is invalid for a queue of ${this.size}`);
    }
    const slot = this.layout.usedRing + RING_HEADER + (this.nextUsed % this.size) * USED_ENTRY;
    this.mem.writeU32(slot, head);
    this.mem.writeU32(slot + 4, len);
    this.nextUsed = (this.nextUsed + 1) % U16;
    this.addedSinceCheck++;
    // The entry must be visible before the idx that publishes it (virtio 1.2 §2.7.14).
    memoryFence();
    this.mem.writeU16(this.layout.usedRing + 2, this.nextUsed);
  }

  /**
   * Whether the driver wants a used-buffer interrupt for the entries added since the last call:
   * vring_need_event(used_event, new, old) with VIRTIO_F_EVENT_IDX (virtio 1.2 §2.7.10), else the
   * VIRTQ_AVAIL_F_NO_INTERRUPT flag (§2.7.7).
   */
  needsNotification(): boolean {
    if (this.addedSinceCheck === 0) return false;
    this.addedSinceCheck = 0;
    // Our used idx store must be ordered before reading the driver's event field or flags.
    memoryFence();
    if (!this.features.eventIdx) return (this.mem.readU16(this.layout.availRing) & AVAIL_F_NO_INTERRUPT) === 0;
    const usedEvent = this.mem.readU16(this.layout.availRing + RING_HEADER + this.size * AVAIL_ENTRY);
    const old = this.signalledUsed;
    this.signalledUsed = this.nextUsed;
    if (old === null) return true;
    return (this.nextUsed - usedEvent - 1 + 2 * U16) % U16 < (this.nextUsed - old + U16) % U16;
  }

  /** Reads the driver's avail idx; true when new entries are there. Asks for a kick first if it is empty. */
  private refreshAvailIdx(): boolean {
    this.availIdx = this.readAvailIdx();
    if (this.availIdx !== this.nextAvail || !this.features.eventIdx) return this.availIdx !== this.nextAvail;
    // Empty: set avail_event so the driver kicks on its next entry (virtio 1.2 §2.7.10), then look
    // again, since the driver may have added one before it could see the new avail_event.
    this.mem.writeU16(this.layout.usedRing + RING_HEADER + this.size * USED_ENTRY, this.nextAvail);
    memoryFence();
    this.availIdx = this.readAvailIdx();
    return this.availIdx !== this.nextAvail;
  }

  private readAvailIdx(): number {
    const idx = this.mem.readU16(this.layout.availRing + 2);
    const pending = (idx - this.nextAvail + U16) % U16;
    if (pending > this.size) {
      this.fail(new VirtqError("avail-index", `avail idx ${idx} claims ${pending} new entries, more than the queue size ${this.size}`));
    }
    return idx;
  }

  /** Where the device is in the rings, as plain data (snapshots); the rings themselves are in guest RAM. */
  saveState(): { nextAvail: number; nextUsed: number; signalledUsed: number | null } {
    return { nextAvail: this.nextAvail, nextUsed: this.nextUsed, signalledUsed: this.signalledUsed };
  }

  /** Takes back saveState()'s data; the avail idx is read from guest RAM again on the next pop(). */
  restoreState(s: { nextAvail: number; nextUsed: number; signalledUsed: number | null }): void {
    const u16 = (v: unknown) => Number.isInteger(v) && (v as number) >= 0 && (v as number) < U16;
    if (!u16(s.nextAvail) || !u16(s.nextUsed) || (s.signalledUsed !== null && !u16(s.signalledUsed))) {
      throw new VirtqError("queue-layout", "saved queue positions must be 16-bit ring indices");
    }
    this.nextAvail = s.nextAvail;
    this.availIdx = s.nextAvail;
    this.nextUsed = s.nextUsed;
    this.signalledUsed = s.signalledUsed;
  }

  private fail(err: VirtqError): never {
    this.brokenBy = err;
    throw err;
  }
}
