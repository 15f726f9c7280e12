/**
 * A raw disk image file (or host block device) behind virtio-blk: the host I/O backend of
 * block/. Data moves with preadv/pwritev straight between the file and guest memory.
 */
import { closeSync, openSync } from "node:fs";
import type { GuestMemory } from "../../../memory/guest-memory.js";
import { EINTR, SysError } from "../../../sys/errors.js";
import { errno, fallocate, fdatasync, lseek, preadAddress, preadv, pwrite, pwriteAddress, pwritev } from "../../../sys/libc.js";
import { GuestIovecs, IOV_MAX } from "../host-iovec.js";
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
  /** Rebuilt for every read and write: requests are served one at a time. */
  private readonly iovecs = new GuestIovecs();

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
    if (!this.transferContiguous("pread", mem, segments, offset)) this.transfer("preadv", mem, segments, offset);
  }

  write(mem: GuestMemory, segments: readonly GuestSegment[], offset: number): void {
    if (this.readOnly) throw new DiskIoError(`${this.path} is read-only`);
    if (!this.transferContiguous("pwrite", mem, segments, offset)) this.transfer("pwritev", mem, segments, offset);
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

  /**
   * The common single-buffer request (one segment inside one span of guest RAM) with pread/pwrite
   * on its host address: cheaper per call than an iovec. False, having done nothing, otherwise.
   */
  private transferContiguous(call: ContiguousCall, mem: GuestMemory, segments: readonly GuestSegment[], offset: number): boolean {
    if (segments.length !== 1 || segments[0].len === 0) return false;
    const { addr, len } = segments[0];
    const host = mem.hostAddressOrUndefined(addr, len);
    if (host === undefined) return false;
    for (let done = 0; done < len; ) {
      const n = this.contiguous(call, host + done, len - done, offset + done);
      if (n === 0) throw new DiskIoError(`${call} at ${offset + done} on ${this.path} reached the end of the file`);
      done += n;
    }
    return true;
  }

  /** One pread/pwrite at host address `host`, retried on EINTR. */
  private contiguous(call: ContiguousCall, host: number, count: number, offset: number): number {
    for (;;) {
      const ret = Number(call === "pread" ? preadAddress(this.fd, host, count, offset) : pwriteAddress(this.fd, host, count, offset));
      if (ret >= 0) return ret;
      const e = errno();
      if (e !== EINTR) throw ioError(new SysError(call, e, `${this.path} at ${offset}`));
    }
  }

  /** Moves every byte of `segments`, looping over short transfers and IOV_MAX-sized batches. */
  private transfer(call: VectoredCall, mem: GuestMemory, segments: readonly GuestSegment[], offset: number): void {
    const iov = this.iovecs;
    iov.build(mem, segments);
    let first = 0;
    let done = 0;
    while (first < iov.count) {
      const n = this.vectored(call, iov.from(first), Math.min(IOV_MAX, iov.count - first), offset + done);
      if (n === 0) throw new DiskIoError(`${call} at ${offset + done} on ${this.path} reached the end of the file`);
      done += n;
      first = iov.advance(first, n);
    }
  }

  /** One preadv/pwritev, retried on EINTR; like retrying() but without a closure per request. */
  private vectored(call: VectoredCall, iov: Buffer, count: number, offset: number): number {
    for (;;) {
      const ret = Number(call === "preadv" ? preadv(this.fd, iov, count, offset) : pwritev(this.fd, iov, count, offset));
      if (ret >= 0) return ret;
      const e = errno();
      if (e !== EINTR) throw ioError(new SysError(call, e, `${this.path} at ${offset}`));
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

type ContiguousCall = "pread" | "pwrite";
type VectoredCall = "preadv" | "pwritev";

function ioError(cause: SysError): DiskIoError {
  return new DiskIoError(cause.message, { cause });
}
