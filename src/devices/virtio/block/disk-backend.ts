/** What virtio-blk needs from the storage behind it; the file backend and the in-memory test backend implement it. */
import type { GuestMemory } from "../../../memory/guest-memory.js";
import type { GuestSegment } from "../queue/chain-buffers.js";

export class DiskIoError extends Error {
  override readonly name = "DiskIoError";
}

export interface DiskBackend {
  /** Size of the disk image in bytes. */
  readonly sizeBytes: number;
  readonly readOnly: boolean;
  /** Whether discard() can deallocate ranges (probed once when the disk is opened). */
  readonly canDiscard: boolean;
  /** Fills the guest buffers `segments` from the disk at `offset`; throws DiskIoError. */
  read(mem: GuestMemory, segments: readonly GuestSegment[], offset: number): void;
  /** Writes the guest buffers `segments` to the disk at `offset`; throws DiskIoError. */
  write(mem: GuestMemory, segments: readonly GuestSegment[], offset: number): void;
  /** Makes completed writes durable. */
  flush(): void;
  /** Deallocates [offset, offset+length); later reads return zeros. */
  discard(offset: number, length: number): void;
  /** Makes [offset, offset+length) read as zeros; `mayUnmap` allows deallocating it. */
  writeZeroes(offset: number, length: number, mayUnmap: boolean): void;
  close(): void;
}
