/** A disk held in a JS byte array: for tests, fuzzing and throwaway scratch disks. */
import type { GuestMemory } from "../../../memory/guest-memory.js";
import { totalLength, type GuestSegment } from "../queue/chain-buffers.js";
import { DiskIoError, type DiskBackend } from "./disk-backend.js";

export class MemoryDisk implements DiskBackend {
  readonly canDiscard = true;
  flushes = 0;

  constructor(readonly bytes: Uint8Array, readonly readOnly = false) {}

  get sizeBytes(): number {
    return this.bytes.length;
  }

  read(mem: GuestMemory, segments: readonly GuestSegment[], offset: number): void {
    let at = this.checkedRange(offset, totalLength(segments));
    for (const s of segments) {
      mem.write(s.addr, this.bytes.subarray(at, at + s.len));
      at += s.len;
    }
  }

  write(mem: GuestMemory, segments: readonly GuestSegment[], offset: number): void {
    this.writable();
    let at = this.checkedRange(offset, totalLength(segments));
    for (const s of segments) {
      this.bytes.set(mem.read(s.addr, s.len), at);
      at += s.len;
    }
  }

  flush(): void {
    this.flushes++;
  }

  discard(offset: number, length: number): void {
    this.writeZeroes(offset, length);
  }

  writeZeroes(offset: number, length: number): void {
    this.writable();
    this.bytes.fill(0, this.checkedRange(offset, length), offset + length);
  }

  close(): void {}

  private writable(): void {
    if (this.readOnly) throw new DiskIoError("disk is read-only");
  }

  private checkedRange(offset: number, length: number): number {
    if (offset < 0 || offset + length > this.bytes.length) throw new DiskIoError(`range ${offset}+${length} is past the end of a ${this.bytes.length}-byte disk`);
    return offset;
  }
}
