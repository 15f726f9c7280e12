/**
 * Guest RAM to and from a snapshot's memory file. The file is guest RAM region after region, as in Firecracker
 * (region i at the sum of the sizes before it). Restoring maps it MAP_PRIVATE: Linux brings pages in from the
 * page cache on the guest's first touch and copies a page only when someone writes it, so a restore reads
 * nothing up front and every clone of one snapshot shares the unwritten pages.
 */
import { ftruncateSync } from "node:fs";
import { mmap, pwriteAddress, errno, view } from "../sys/libc.js";
import { SysError } from "../sys/errors.js";
import type { MemoryRegionDescriptor } from "./guest-memory.js";

const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_PRIVATE = 0x02;
const MAP_NORESERVE = 0x4000;
const MAP_FAILED = 0xffff_ffff_ffff_ffffn;
export const PAGE_SIZE = 4096;
/** Writes go out in pieces of this size: each is checked for zeros first (left as a hole in the file). */
const CHUNK = 64 * 1024;
const ZERO_CHUNK = new Uint8Array(CHUNK);

/** Maps `size` bytes of `fd` from `offset`, private copy-on-write, nothing read in advance. */
export function mapFilePrivate(fd: number, offset: number, size: number): bigint {
  const addr = mmap(null, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, offset) as bigint;
  if (addr === MAP_FAILED) throw new SysError("mmap", errno(), `${size} bytes of the memory file at offset ${offset}`);
  return addr;
}

/** Offsets of each region in the memory file. */
export function regionFileOffsets(regions: readonly { size: number }[]): number[] {
  let at = 0;
  return regions.map((r) => {
    const off = at;
    at += r.size;
    return off;
  });
}

/**
 * Writes guest RAM into `fd` (an empty file): every page (`dirty` absent: a Full snapshot) or the pages whose bit
 * is set in each region's dirty bitmap (a Diff snapshot, one bit per page as KVM_GET_DIRTY_LOG gives). The file
 * gets the full RAM size. In a Full file all-zero pieces are left as holes; in a Diff file exactly the dirty pages
 * take disk blocks (Firecracker's sparse diff layout: SEEK_DATA finds them when layers are merged).
 * Returns the bytes written.
 */
export function writeGuestMemory(fd: number, regions: readonly MemoryRegionDescriptor[], dirty?: readonly BigUint64Array[]): number {
  const offsets = regionFileOffsets(regions);
  ftruncateSync(fd, regions.reduce((n, r) => n + r.size, 0));
  let written = 0;
  regions.forEach((r, i) => {
    const write = (start: number, len: number) => {
      for (let at = start; at < start + len; at += CHUNK) {
        const n = Math.min(CHUNK, start + len - at);
        const bytes = new Uint8Array(view(r.hostAddr + BigInt(at), n));
        // Holes mean zeros only in a Full file; in a Diff a hole means "not in this layer", so zeros are written.
        if (!dirty && (n === CHUNK ? Buffer.compare(bytes, ZERO_CHUNK) === 0 : bytes.every((b) => b === 0))) continue;
        pwriteAll(fd, r.hostAddr + BigInt(at), n, offsets[i] + at);
        written += n;
      }
    };
    if (!dirty) return write(0, r.size);
    forEachDirtyRun(dirty[i], r.size / PAGE_SIZE, (firstPage, pages) => write(firstPage * PAGE_SIZE, pages * PAGE_SIZE));
  });
  return written;
}

/** Calls `fn(firstPage, count)` for each run of set bits among the first `pages` bits of `bitmap`. */
export function forEachDirtyRun(bitmap: BigUint64Array, pages: number, fn: (firstPage: number, count: number) => void): void {
  let runStart = -1;
  for (let w = 0; w * 64 < pages; w++) {
    const word = bitmap[w];
    if (word === 0n && runStart < 0) continue;
    for (let b = 0; b < 64 && w * 64 + b < pages; b++) {
      const page = w * 64 + b;
      const set = ((word >> BigInt(b)) & 1n) === 1n;
      if (set && runStart < 0) runStart = page;
      if (!set && runStart >= 0) {
        fn(runStart, page - runStart);
        runStart = -1;
      }
    }
  }
  if (runStart >= 0) fn(runStart, pages - runStart);
}

function pwriteAll(fd: number, addr: bigint, len: number, off: number): void {
  let done = 0;
  while (done < len) {
    const n = Number(pwriteAddress(fd, Number(addr) + done, len - done, off + done));
    if (n < 0) throw new SysError("pwrite", errno(), "memory file");
    done += n;
  }
}
