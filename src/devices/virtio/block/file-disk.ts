/**
 * A raw disk image file (or host block device) behind virtio-blk: the host I/O backend of
 * block/. Data moves with preadv/pwritev straight between the file and guest memory.
 */
import { closeSync, openSync } from "node:fs";
import type { GuestMemory } from "../../../memory/guest-memory.js";
import { EINTR, SysError } from "../../../sys/errors.js";
import { errno, fallocate, fdatasync, lseek, preadv, pwrite, pwritev } from "../../../sys/libc.js";
import { advanceIovecs, guestIovecs, IOV_MAX, IOVEC_SIZE } from "../host-iovec.js";
import type { GuestSegment } from "../queue/chain-buffers.js";
import { DiskIoError, type DiskBackend } from "./disk-backend.js";

/** lseek whence, man 2 lseek. */
const SEEK_END = 2;
/** fallocate modes, linux/falloc.h. */
const FALLOC_FL_KEEP_SIZE = 0x01;
const FALLOC_FL_PUNCH_HOLE = 0x02;
const FALLOC_FL_ZERO_RANGE = 0x10;
/** errno for a file system without the fallocate mode (asm-generic/errno.h). */
const EOPNOTSUPP = 95;
/** Chunk for writing explicit zeros when the file system cannot zero a range itself. */
const ZERO_CHUNK = 1 << 20;

export interface FileDiskOptions {
  readOnly?: boolean;
}

export class FileDisk implements DiskBackend {
  readonly sizeBytes: number;
  readonly canDiscard: boolean;
  private zeroRangeWorks = true;
  private closed = false;

  private constructor(private readonly fd: number, readonly readOnly: boolean, readonly path: string) {
    const end = Number(lseek(fd, 0, SEEK_END));
    if (end < 0) throw new SysError("lseek", errno(), path);
    this.sizeBytes = end;
    this.canDiscard = !readOnly && this.probePunchHole();
  }

  /** Opens `path` (read-write unless `readOnly`); throws the fs error for a missing or unreadable file. */
  static open(path: string, options: FileDiskOptions = {}): FileDisk {
    const readOnly = options.readOnly ?? false;
    const fd = openSync(path, readOnly ? "r" : "r+");
    try {
      return new FileDisk(fd, readOnly, path);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  read(mem: GuestMemory, segments: readonly GuestSegment[], offset: number): void {
    this.transfer("preadv", mem, segments, offset);
  }

  write(mem: GuestMemory, segments: readonly GuestSegment[], offset: number): void {
    if (this.readOnly) throw new DiskIoError(`${this.path} is read-only`);
    this.transfer("pwritev", mem, segments, offset);
  }

  flush(): void {
    this.retrying("fdatasync", 0, () => fdatasync(this.fd) as number);
  }

  discard(offset: number, length: number): void {
    this.retrying("fallocate(PUNCH_HOLE)", offset, () => fallocate(this.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length) as number);
  }

  /** Unmap allowed: punch a hole; otherwise keep the blocks allocated (ZERO_RANGE, or explicit zeros where unsupported). */
  writeZeroes(offset: number, length: number, mayUnmap: boolean): void {
    if (this.readOnly) throw new DiskIoError(`${this.path} is read-only`);
    if (mayUnmap && this.canDiscard) return this.discard(offset, length);
    if (this.zeroRangeWorks) {
      const ret = fallocate(this.fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, offset, length) as number;
      if (ret === 0) return;
      const e = errno();
      if (e !== EOPNOTSUPP) throw ioError(new SysError("fallocate(ZERO_RANGE)", e, `${this.path} at ${offset}`));
      this.zeroRangeWorks = false;
    }
    const zeros = Buffer.alloc(Math.min(ZERO_CHUNK, length));
    for (let done = 0; done < length; ) {
      const n = Math.min(zeros.length, length - done);
      done += this.retrying("pwrite", offset + done, () => Number(pwrite(this.fd, zeros, n, offset + done)));
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }

  /** A punch past the end of the file changes nothing but fails where the file system lacks the mode. */
  private probePunchHole(): boolean {
    return fallocate(this.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, this.sizeBytes, 1) === 0;
  }

  /** Moves every byte of `segments`, looping over short transfers and IOV_MAX-sized batches. */
  private transfer(call: "preadv" | "pwritev", mem: GuestMemory, segments: readonly GuestSegment[], offset: number): void {
    const fn = call === "preadv" ? preadv : pwritev;
    const iov = guestIovecs(mem, segments);
    let first = 0;
    let done = 0;
    while (first < iov.count) {
      const batch = Math.min(IOV_MAX, iov.count - first);
      const n = this.retrying(call, offset + done, () => Number(fn(this.fd, iov.buffer.subarray(first * IOVEC_SIZE), batch, offset + done)));
      if (n === 0) throw new DiskIoError(`${call} at ${offset + done} on ${this.path} reached the end of the file`);
      done += n;
      first = advanceIovecs(iov, first, n);
    }
  }

  private retrying(call: string, offset: number, syscall: () => number): number {
    for (;;) {
      const ret = syscall();
      if (ret >= 0) return ret;
      const e = errno();
      if (e !== EINTR) throw ioError(new SysError(call, e, `${this.path} at ${offset}`));
    }
  }
}

function ioError(cause: SysError): DiskIoError {
  return new DiskIoError(cause.message, { cause });
}
