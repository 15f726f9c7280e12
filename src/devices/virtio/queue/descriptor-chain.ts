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

/** Largest split queue the spec allows (virtio 1.2 §2.7: "Queue Size ... maximum 32768"); bounds indirect tables too. */
export const MAX_QUEUE_SIZE = 32768;

/** One guest buffer of a chain: `writable` means device-writable (VIRTQ_DESC_F_WRITE). */
export interface Descriptor {
  addr: number;
  len: number;
  writable: boolean;
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

  /** Walks the chain, following at most one indirect table; throws a VirtqError on the first bad descriptor. */
  *[Symbol.iterator](): Iterator<Descriptor> {
    let table = this.table;
    let size = this.tableSize;
    let index = this.head;
    let inIndirect = false;
    // A chain can visit each table entry at most once; more links than entries means a loop.
    let linksLeft = size;
    for (;;) {
      if (index >= size) throw new VirtqError("descriptor-index", `descriptor ${index} is past the ${inIndirect ? "indirect " : ""}table of ${size}`);
      if (linksLeft-- === 0) throw new VirtqError("chain-too-long", `chain from head ${this.head} has more than ${size} links (a loop?)`);
      const at = table + index * DESCRIPTOR_SIZE;
      const addr64 = this.mem.readU64(at);
      const len = this.mem.readU32(at + 8);
      const flags = this.mem.readU16(at + 12);
      const next = this.mem.readU16(at + 14);

      if (flags & DESC_F_INDIRECT) {
        if (!this.indirectAllowed) throw new VirtqError("indirect-not-negotiated", `descriptor ${index} is indirect but VIRTIO_F_INDIRECT_DESC was not negotiated`);
        if (inIndirect) throw new VirtqError("nested-indirect", `indirect table entry ${index} points to another indirect table`);
        if (flags & DESC_F_NEXT) throw new VirtqError("indirect-with-next", `descriptor ${index} sets both INDIRECT and NEXT`);
        if (len === 0 || len % DESCRIPTOR_SIZE !== 0 || len / DESCRIPTOR_SIZE > MAX_QUEUE_SIZE) {
          throw new VirtqError("indirect-table-size", `indirect table length ${len} is not a multiple of ${DESCRIPTOR_SIZE} between 16 and ${MAX_QUEUE_SIZE * DESCRIPTOR_SIZE}`);
        }
        const tableAddr = this.checkedRange(addr64, len, index);
        table = tableAddr;
        size = len / DESCRIPTOR_SIZE;
        linksLeft = size;
        index = 0;
        inIndirect = true;
        continue;
      }

      yield { addr: this.checkedRange(addr64, len, index), len, writable: (flags & DESC_F_WRITE) !== 0 };
      if (!(flags & DESC_F_NEXT)) return;
      index = next;
    }
  }

  /** All descriptors of the chain, validated. */
  descriptors(): Descriptor[] {
    return [...this];
  }

  private checkedRange(addr64: bigint, len: number, index: number): number {
    const addr = addr64 <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(addr64) : -1;
    if (addr < 0 || !this.mem.contains(addr, len)) {
      throw new VirtqError("descriptor-range", `descriptor ${index} buffer 0x${addr64.toString(16)}+0x${len.toString(16)} is outside guest RAM`);
    }
    return addr;
  }
}
