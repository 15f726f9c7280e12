/** What virtio-net needs from the host side of the link; the tap backend and test backends implement it. */
import type { GuestMemory } from "../../../memory/guest-memory.js";
import type { GuestSegment } from "../queue/chain-buffers.js";

export class NetIoError extends Error {
  override readonly name = "NetIoError";
}

/** Offloads for frames going to the guest: partial checksums and TCP segmentation (TUN_F_CSUM/TSO4/TSO6). */
export interface GuestOffloads {
  csum: boolean;
  tso4: boolean;
  tso6: boolean;
}

export interface NetBackend {
  /** The fd the event loop polls for EPOLLIN. */
  readonly fd: number;
  /** The receive offloads the backend can produce, probed when it was opened. */
  readonly supportedOffloads: GuestOffloads;
  /** Turns on exactly these receive offloads (what the driver accepted). */
  setOffloads(offloads: GuestOffloads): void;
  /**
   * Reads one frame, preceded by its virtio_net_hdr_v1, into the guest buffers `segments`;
   * returns its length in bytes, or null when no frame is waiting. Throws NetIoError.
   */
  receive(mem: GuestMemory, segments: readonly GuestSegment[]): number | null;
  /** Sends one frame (virtio_net_hdr_v1 first) from the guest buffers `segments`; false when the host queue was full and the frame was dropped. Throws NetIoError. */
  send(mem: GuestMemory, segments: readonly GuestSegment[]): boolean;
  close(): void;
}
