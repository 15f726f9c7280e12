/**
 * The baselines of the block benchmark: the same sequential pattern (same file, same request size, one
 * request at a time in file order) with plain pread/pwrite, through koffi (the same FFI the device's
 * preadv/pwritev go through) and through Node's fs.readSync/writeSync. Requests go to one reused
 * buffer, or rotate over several (as many as the device has requests in flight, for the same memory
 * footprint as the device's guest buffers: 16 MiB of them no longer sit in the CPU caches).
 *
 * The buffers are anonymous mmap'd memory like guest RAM, not Buffer.alloc memory: on this machine a
 * 16 MiB Buffer.alloc'd ring took ~4x the CPU time of an mmap'd one as a pread destination, which
 * would have made the baseline measure Node's allocator instead of the I/O path.
 */
import { fdatasyncSync, readSync, writeSync } from "node:fs";
import { errno, fdatasync, pread, pwrite, view } from "../src/sys/libc.js";
import { mapAnonymous, unmap } from "../src/memory/host-mapping.js";
import { EINTR, SysError } from "../src/sys/errors.js";
import { BenchError } from "./bench-error.js";
import type { Direction } from "./blk-guest-driver.js";
import { Stopwatch, type Timing } from "./blk-clock.js";

export type HostApi = "koffi" | "node-fs";

export interface MappedBuffers {
  buffers: Buffer[];
  release(): void;
}

/** `count` buffers of `bytes` each, back to back in one anonymous mapping, touched so no pass pays page faults. */
export function mappedBuffers(count: number, bytes: number, fill: number): MappedBuffers {
  const total = count * bytes;
  const addr = mapAnonymous(total);
  const all = Buffer.from(view(addr, total));
  all.fill(fill);
  return {
    buffers: Array.from({ length: count }, (_, i) => all.subarray(i * bytes, (i + 1) * bytes)),
    release: () => unmap(addr, total),
  };
}

/**
 * Moves `bytes` from the start of `fd` in requests of one buffer's size, request i using
 * buffers[i % buffers.length]; returns the time it took.
 */
export function hostPass(api: HostApi, direction: Direction, fd: number, buffers: readonly Buffer[], bytes: number): Timing {
  const request = buffers[0].length;
  if (bytes % request !== 0 || buffers.some((b) => b.length !== request)) throw new BenchError(`${bytes} bytes is not whole ${request}-byte requests`);
  const transfer = api === "koffi" ? koffiTransfer(direction) : nodeTransfer(direction);
  const clock = new Stopwatch();
  for (let offset = 0, i = 0; offset < bytes; offset += request, i++) {
    const n = transfer(fd, buffers[i % buffers.length], offset);
    if (n !== request) throw new BenchError(`${api} ${direction} of ${request} bytes at ${offset} moved ${n}`);
  }
  return clock.elapsed();
}

/** fdatasync(fd) through `api`; returns the time it took. */
export function hostFdatasync(api: HostApi, fd: number): Timing {
  const clock = new Stopwatch();
  if (api === "node-fs") fdatasyncSync(fd);
  else {
    while (fdatasync(fd) !== 0) {
      const e = errno();
      if (e !== EINTR) throw new SysError("fdatasync", e, "benchmark file");
    }
  }
  return clock.elapsed();
}

type Transfer = (fd: number, buffer: Buffer, offset: number) => number;

/** pread/pwrite through koffi, retried on EINTR as FileDisk retries its preadv/pwritev. */
function koffiTransfer(direction: Direction): Transfer {
  const call = direction === "read" ? pread : pwrite;
  return (fd, buffer, offset) => {
    for (;;) {
      const n = Number(call(fd, buffer, buffer.length, offset));
      if (n >= 0) return n;
      const e = errno();
      if (e !== EINTR) throw new SysError(direction === "read" ? "pread" : "pwrite", e, `benchmark file at ${offset}`);
    }
  };
}

function nodeTransfer(direction: Direction): Transfer {
  return direction === "read"
    ? (fd, buffer, offset) => readSync(fd, buffer, 0, buffer.length, offset)
    : (fd, buffer, offset) => writeSync(fd, buffer, 0, buffer.length, offset);
}
