/** struct iovec arrays over guest memory, for readv/writev/preadv/pwritev straight into guest buffers. */
import type { GuestMemory } from "../../memory/guest-memory.js";
import type { GuestSegment } from "./queue/chain-buffers.js";
import { hostContiguousPieces } from "./guest-pieces.js";

/** sizeof(struct iovec) on LP64 Linux: void *iov_base; size_t iov_len (man 2 readv). */
export const IOVEC_SIZE = 16;
/** UIO_MAXIOV / IOV_MAX on Linux: the most iovecs one readv/preadv call accepts (man 2 readv). */
export const IOV_MAX = 1024;

/** An iovec array in a Buffer (pass it as `const void *iov`), `count` entries covering `bytes` bytes. */
export interface IovecArray {
  buffer: Buffer;
  count: number;
  bytes: number;
}

/** Builds iovecs for guest `segments`; throws GuestMemoryError if any byte is outside guest RAM. */
export function guestIovecs(mem: GuestMemory, segments: readonly GuestSegment[]): IovecArray {
  const pieces = hostContiguousPieces(mem, segments).filter((p) => p.len > 0);
  const buffer = Buffer.alloc(pieces.length * IOVEC_SIZE);
  let bytes = 0;
  pieces.forEach((p, i) => {
    buffer.writeBigUInt64LE(mem.hostAddress(p.addr, p.len), i * IOVEC_SIZE);
    buffer.writeBigUInt64LE(BigInt(p.len), i * IOVEC_SIZE + 8);
    bytes += p.len;
  });
  return { buffer, count: pieces.length, bytes };
}

/** Marks the first `done` bytes of `iov` (from entry `first` on) as transferred; returns the new first entry. */
export function advanceIovecs(iov: IovecArray, first: number, done: number): number {
  let i = first;
  let left = done;
  while (left > 0 && i < iov.count) {
    const at = i * IOVEC_SIZE;
    const len = Number(iov.buffer.readBigUInt64LE(at + 8));
    if (left < len) {
      iov.buffer.writeBigUInt64LE(iov.buffer.readBigUInt64LE(at) + BigInt(left), at);
      iov.buffer.writeBigUInt64LE(BigInt(len - left), at + 8);
      return i;
    }
    left -= len;
    i++;
  }
  return i;
}
