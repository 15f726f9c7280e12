/**
 * One descriptor chain of a split virtqueue, validated while it is walked
 * (virtio 1.2 §2.7.5 The Virtqueue Descriptor Table, §2.7.5.3 Indirect Descriptors).
 */
import type { GuestMemory } from "../../../memory/guest-memory.js";
import { VirtqError } from "./virtq-error.js";

/** struct virtq_desc: le64 addr, le32 len, le16 flags, le16 next (virtio 1.2 §2.7.5). */
export const DESCRIPTOR_SIZE = 16;
const DESC_F_NEXT = 1;
const DESC_F_WRITE = 2;
const DESC_F_INDIRECT = 4;

/** Largest split queue the spec allows (virtio 1.2 §2.7: "Queue Size ... maximum 32768"). */
export const MAX_QUEUE_SIZE = 32768;

/** One guest buffer of a chain: `writable` means device-writable (VIRTQ_DESC_F_WRITE). */
export interface Descriptor {
  addr: number;
  len: number;
  writable: boolean;
}

/** u32s per struct virtq_desc: addr low, addr high, len, flags | next << 16. */
const DESCRIPTOR_WORDS = DESCRIPTOR_SIZE / 4;
/** A guest address whose high u32 is at least this is past 2^53 and so past any guest RAM. */
const UNSAFE_ADDR_HIGH = 2 ** 21;

/**
 * Scratch shared by every walk (walks run one at a time and never call out while reading it):
 * the current ring descriptor, and the current indirect table, read whole with one range check.
 */
const ringDescriptor = new Uint32Array(DESCRIPTOR_WORDS);
let indirectTable = new Uint32Array(64 * DESCRIPTOR_WORDS);

/** The indirect table at `addr` with `entries` descriptors, copied into `indirectTable` (grown to fit, at most the queue size). */
function readIndirectTable(mem: GuestMemory, addr: number, entries: number): Uint32Array {
  const words = entries * DESCRIPTOR_WORDS;
  if (words > indirectTable.length) indirectTable = new Uint32Array(Math.max(words, indirectTable.length * 2));
  mem.readU32s(addr, indirectTable, words);
  return indirectTable;
}

export class DescriptorChain implements Iterable<Descriptor> {
  /**
   * `head` indexes the queue's descriptor table at `table` with `tableSize` entries (checked by
   * the queue); `indirectAllowed` is whether VIRTIO_F_INDIRECT_DESC was negotiated.
   */
  constructor(
    private readonly mem: GuestMemory,
    private readonly table: number,
    private readonly tableSize: number,
    readonly head: number,
    private readonly indirectAllowed: boolean,
  ) {}

  /**
   * Walks the chain, following at most one indirect table, and appends each descriptor to `out`;
   * throws a VirtqError on the first bad descriptor. A plain loop into the caller's array: this
   * runs once per request, and a generator or a BigInt per descriptor showed up in profiles.
   * The whole chain, direct and indirect buffers together, is at most the queue size (virtio 1.2
   * §2.7.5.3.1: "A driver MUST NOT create a descriptor chain longer than the Queue Size of the
   * device"), and so is an indirect table: this bounds a chain's work by the queue size, where an
   * indirect table used to restart the count (one chain of 255 + 32768 descriptors).
   */
  collect(out: Descriptor[]): void {
    let size = this.tableSize;
    let index = this.head;
    // Where the current descriptor's words are: read from the ring one at a time, or from the indirect table's copy.
    let indirect: Uint32Array | null = null;
    // Buffers the chain may still have; running out also ends a loop, which would visit an entry twice.
    let buffersLeft = this.tableSize;
    for (;;) {
      if (index >= size) throw new VirtqError("descriptor-index", `descriptor ${index} is past the ${indirect ? "indirect " : ""}table of ${size}`);
      if (buffersLeft === 0) throw new VirtqError("chain-too-long", `chain from head ${this.head} has more than ${this.tableSize} descriptors, the queue size (a loop?)`);
      let words = indirect;
      let at = index * DESCRIPTOR_WORDS;
      if (!words) {
        words = ringDescriptor;
        at = 0;
        this.mem.readU32s(this.table + index * DESCRIPTOR_SIZE, words);
      }
      const addrLow = words[at];
      const addrHigh = words[at + 1];
      const len = words[at + 2];
      const flags = words[at + 3] & 0xffff;
      const next = words[at + 3] >>> 16;

      if (flags & DESC_F_INDIRECT) {
        if (!this.indirectAllowed) throw new VirtqError("indirect-not-negotiated", `descriptor ${index} is indirect but VIRTIO_F_INDIRECT_DESC was not negotiated`);
        if (indirect) throw new VirtqError("nested-indirect", `indirect table entry ${index} points to another indirect table`);
        if (flags & DESC_F_NEXT) throw new VirtqError("indirect-with-next", `descriptor ${index} sets both INDIRECT and NEXT`);
        if (len === 0 || len % DESCRIPTOR_SIZE !== 0 || len / DESCRIPTOR_SIZE > this.tableSize) {
          throw new VirtqError("indirect-table-size", `indirect table length ${len} is not a multiple of ${DESCRIPTOR_SIZE} between 16 and ${this.tableSize * DESCRIPTOR_SIZE} (the queue size)`);
        }
        size = len / DESCRIPTOR_SIZE;
        indirect = readIndirectTable(this.mem, this.checkedRange(addrLow, addrHigh, len, index), size);
        index = 0;
        continue;
      }

      out.push({ addr: this.checkedRange(addrLow, addrHigh, len, index), len, writable: (flags & DESC_F_WRITE) !== 0 });
      buffersLeft--;
      if (!(flags & DESC_F_NEXT)) return;
      index = next;
    }
  }

  /** All descriptors of the chain, validated. */
  descriptors(): Descriptor[] {
    const out: Descriptor[] = [];
    this.collect(out);
    return out;
  }

  /** The validated descriptors one by one; the whole chain is checked before the first comes out. */
  [Symbol.iterator](): Iterator<Descriptor> {
    return this.descriptors()[Symbol.iterator]();
  }

  /** The buffer address of descriptor `index` as a number, or a VirtqError if [addr, addr+len) is not all guest RAM. */
  private checkedRange(addrLow: number, addrHigh: number, len: number, index: number): number {
    const addr = addrHigh * 2 ** 32 + addrLow;
    if (addrHigh >= UNSAFE_ADDR_HIGH || !this.mem.contains(addr, len)) {
      const addr64 = (BigInt(addrHigh) << 32n) | BigInt(addrLow);
      throw new VirtqError("descriptor-range", `descriptor ${index} buffer 0x${addr64.toString(16)}+0x${len.toString(16)} is outside guest RAM`);
    }
    return addr;
  }
}
