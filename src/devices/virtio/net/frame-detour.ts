/**
 * A hook in virtio-net's data path for a service that answers some guest frames itself instead of the
 * host link (MMDS, as Firecracker's net device detours frames to its MmdsNetworkStack): the device offers
 * it each transmitted frame first and fills receive buffers with its replies before the host's frames.
 * Frames here are Ethernet frames without the virtio_net_hdr.
 */
export interface FrameDetour {
  /** Whether the frame is the detour's, judged from its first DETOUR_PEEK_BYTES bytes (or all, if shorter). */
  wants(head: Uint8Array): boolean;
  /** Takes a whole frame that `wants` claimed. */
  take(frame: Uint8Array): void;
  /** Whether a frame for the guest is waiting. */
  hasFrames(): boolean;
  /** The next frame for the guest, or null. */
  nextFrame(): Uint8Array | null;
}

/** Enough for an ARP frame (14 + 28 bytes) and an IPv4 header's destination. */
export const DETOUR_PEEK_BYTES = 42;
