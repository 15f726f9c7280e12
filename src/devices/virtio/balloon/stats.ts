/**
 * The balloon's statistics (virtio 1.2 §5.5.6.3): the driver's buffer is a list of packed
 * `struct virtio_balloon_stat { le16 tag; le64 val; }`; the names are Firecracker's BalloonStats (swagger).
 */
import type { GuestMemory } from "../../../memory/guest-memory.js";
import type { GuestSegment } from "../queue/chain-buffers.js";

export const PAGES_PER_MIB = 256;
/** sizeof(struct virtio_balloon_stat): packed, 10 bytes. */
export const STAT_SIZE = 10;
/**
 * The most tags read from one buffer: the spec defines 16 and Linux 6.12 added more, so this is generous, and it bounds
 * the work of one hostile buffer (Firecracker's MAX_STATS_TAGS).
 */
export const MAX_STATS_TAGS = 256;

/** GET /balloon/statistics (swagger BalloonStats): sizes always, the guest's figures once it has sent them. */
export interface BalloonGuestStats {
  target_pages: number;
  actual_pages: number;
  target_mib: number;
  actual_mib: number;
  swap_in?: number;
  swap_out?: number;
  major_faults?: number;
  minor_faults?: number;
  free_memory?: number;
  total_memory?: number;
  available_memory?: number;
  disk_caches?: number;
  hugetlb_allocations?: number;
  hugetlb_failures?: number;
  oom_kill?: number;
  alloc_stall?: number;
  async_scan?: number;
  direct_scan?: number;
  async_reclaim?: number;
  direct_reclaim?: number;
}

type GuestStatName = Exclude<keyof BalloonGuestStats, "target_pages" | "actual_pages" | "target_mib" | "actual_mib">;

/** VIRTIO_BALLOON_S_* (include/uapi/linux/virtio_balloon.h) by tag number. */
export const GUEST_STAT_NAMES: readonly GuestStatName[] = [
  "swap_in", "swap_out", "major_faults", "minor_faults", "free_memory", "total_memory", "available_memory", "disk_caches",
  "hugetlb_allocations", "hugetlb_failures", "oom_kill", "alloc_stall", "async_scan", "direct_scan", "async_reclaim", "direct_reclaim",
];

export function emptyBalloonStats(): BalloonGuestStats {
  return { target_pages: 0, actual_pages: 0, target_mib: 0, actual_mib: 0 };
}

/**
 * Reads the stats in `segments` over `previous`: a tag the guest sends replaces its value, unknown tags are skipped.
 * Values above 2^53 are kept as the nearest number (JSON has no u64 either). Throws for a buffer too large or cut short.
 */
export function readStats(mem: GuestMemory, segments: readonly GuestSegment[], previous: BalloonGuestStats): BalloonGuestStats {
  const total = segments.reduce((n, s) => n + s.len, 0);
  if (total > MAX_STATS_TAGS * STAT_SIZE) throw new Error(`stats buffer of ${total} bytes holds more than ${MAX_STATS_TAGS} tags`);
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const s of segments) {
    bytes.set(mem.read(s.addr, s.len), at);
    at += s.len;
  }
  const view = new DataView(bytes.buffer);
  const next: BalloonGuestStats = { ...previous };
  for (let off = 0; off + STAT_SIZE <= total; off += STAT_SIZE) {
    const name = GUEST_STAT_NAMES[view.getUint16(off, true)];
    if (name !== undefined) next[name] = Number(view.getBigUint64(off + 2, true));
  }
  return next;
}
