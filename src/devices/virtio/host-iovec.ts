/** struct iovec arrays over guest memory, for readv/writev/preadv/pwritev straight into guest buffers. */
import type { GuestMemory } from "../../memory/guest-memory.js";
import type { GuestSegment } from "./queue/chain-buffers.js";
import { hostContiguousPieces } from "./guest-pieces.js";

/** sizeof(struct iovec) on LP64 Linux: void *iov_base; size_t iov_len (man 2 readv). */
export const IOVEC_SIZE = 16;
/** UIO_MAXIOV / IOV_MAX on Linux: the most iovecs one readv/preadv call accepts (man 2 readv). */
export const IOV_MAX = 1024;

const U32_SPAN = 2 ** 32;

/**
 * A reusable iovec array for guest buffers: one per backend, rebuilt for every request, so the data
 * path allocates nothing and does no BigInt arithmetic (host addresses are exact numbers below 2^53,
 * see GuestMemory). It holds IOV_MAX entries and grows only for a request that needs more.
 */
export class GuestIovecs {
  /** Entries in use, and the bytes they cover. */
  count = 0;
  bytes = 0;
  private buffer = Buffer.alloc(IOV_MAX * IOVEC_SIZE);
  private entries = dataViewOf(this.buffer);

  /** Rebuilds the array for guest `segments`; throws GuestMemoryError if any byte is outside guest RAM. */
  build(mem: GuestMemory, segments: readonly GuestSegment[]): void {
    this.count = 0;
    this.bytes = 0;
    for (const s of segments) {
      if (s.len === 0) continue;
      const host = mem.hostAddressOrUndefined(s.addr, s.len);
      if (host !== undefined) this.push(host, s.len);
      else this.pushSplit(mem, s);
    }
  }

  /** The entries from `first` on, as the `const struct iovec *` argument of a vectored system call. */
  from(first: number): Buffer {
    return first === 0 ? this.buffer : this.buffer.subarray(first * IOVEC_SIZE, this.count * IOVEC_SIZE);
  }

  /** Marks the first `done` bytes (from entry `first` on) as transferred; returns the new first entry. */
  advance(first: number, done: number): number {
    let i = first;
    let left = done;
    while (left > 0 && i < this.count) {
      const len = this.u64(i * IOVEC_SIZE + 8);
      if (left < len) {
        this.setEntry(i, this.u64(i * IOVEC_SIZE) + left, len - left);
        return i;
      }
      left -= len;
      i++;
    }
    return i;
  }

  /** A segment that is not inside one host mapping: one entry per host-contiguous piece (or the error). */
  private pushSplit(mem: GuestMemory, segment: GuestSegment): void {
    for (const p of hostContiguousPieces(mem, [segment])) this.push(Number(mem.hostAddress(p.addr, p.len)), p.len);
  }

  private push(host: number, len: number): void {
    if (this.count * IOVEC_SIZE === this.buffer.length) this.grow();
    this.setEntry(this.count++, host, len);
    this.bytes += len;
  }

  private grow(): void {
    const bigger = Buffer.alloc(this.buffer.length * 2);
    this.buffer.copy(bigger);
    this.buffer = bigger;
    this.entries = dataViewOf(bigger);
  }

  /** Entry `i` = { iov_base: host, iov_len: len }, each a little-endian u64 written as two u32s. */
  private setEntry(i: number, host: number, len: number): void {
    const at = i * IOVEC_SIZE;
    this.setU64(at, host);
    this.setU64(at + 8, len);
  }

  /** `v` < 2^53 as two u32s; `>>> 0` and a power-of-two division, as `%` on doubles compiles to a slow fmod call. */
  private setU64(at: number, v: number): void {
    const low = v >>> 0;
    this.entries.setUint32(at, low, true);
    this.entries.setUint32(at + 4, (v - low) / U32_SPAN, true);
  }

  private u64(at: number): number {
    return this.entries.getUint32(at, true) + this.entries.getUint32(at + 4, true) * U32_SPAN;
  }
}

function dataViewOf(buffer: Buffer): DataView {
  return new DataView(buffer.buffer, buffer.byteOffset, buffer.length);
}
