/** Errors found while reading a guest's split virtqueue (virtio 1.2 §2.7). */

/** Faults that make the whole ring unusable: the device must stop and ask for a reset. */
export type VirtqRingFault =
  | "queue-layout" // size not a power of two, rings misaligned or outside guest RAM
  | "avail-index" // the driver claims more new entries than the ring holds
  | "head-index"; // an avail ring entry names a descriptor past the table

/** Faults confined to one descriptor chain: the device completes that request with an error and goes on. */
export type VirtqChainFault =
  | "descriptor-index" // a next field points past the table
  | "chain-too-long" // more links than the table has entries: a loop
  | "descriptor-range" // a buffer lies (partly) outside guest RAM
  | "indirect-not-negotiated"
  | "nested-indirect"
  | "indirect-with-next"
  | "indirect-table-size"
  | "readable-after-writable"
  | "chain-layout"; // the device's own framing rules (wrong direction, too short, ...)

/** Device bugs: the device asked the queue for something impossible. */
export type VirtqDeviceFault = "used-entry";

export type VirtqErrorCode = VirtqRingFault | VirtqChainFault | VirtqDeviceFault;

const RING_FAULTS: ReadonlySet<VirtqErrorCode> = new Set<VirtqErrorCode>(["queue-layout", "avail-index", "head-index"]);

export class VirtqError extends Error {
  override readonly name = "VirtqError";
  constructor(readonly code: VirtqErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
  }

  /** True when the ring itself is broken (not just one request): the device needs a reset. */
  get ringBroken(): boolean {
    return RING_FAULTS.has(this.code);
  }
}
