/**
 * Balloon, BalloonUpdate and BalloonStatsUpdate (firecracker-api.yaml; Firecracker vmm_config/balloon.rs): a
 * virtio-balloon device, its target after boot and its statistics polling interval.
 */
import { boolean, ConfigError, defaulted, integer, objectSchema, required, type Check, type ObjectSchema } from "./schema.js";

export interface BalloonConfig {
  /** Target balloon size in MiB (Firecracker: u32, at most mem_size_mib). */
  amount_mib: number;
  deflate_on_oom: boolean;
  /** 0 disables statistics; Firecracker: u16. */
  stats_polling_interval_s: number;
  /** Refused when true: petasan does not offer VIRTIO_BALLOON_F_FREE_PAGE_HINT. */
  free_page_hinting: boolean;
  free_page_reporting: boolean;
}

export interface BalloonUpdate {
  amount_mib: number;
}

export interface BalloonStatsUpdate {
  stats_polling_interval_s: number;
}

/** Firecracker's BalloonConfigError::TooManyPagesRequested text. */
export const BALLOON_TOO_LARGE = "Amount of pages requested is too large.";
export const FREE_PAGE_HINTING_UNSUPPORTED = "petasan does not support balloon free page hinting yet (free_page_reporting is supported)";

const amountMib = integer(0, 2 ** 32 - 1, "u32");
const interval = integer(0, 65535, "u16");

/** A setting accepted but not honoured is a defect: free page hinting is refused rather than ignored. */
const freePageHinting: Check<boolean> = (value, path) => {
  const on = boolean(value, path);
  if (on) throw new ConfigError(path, FREE_PAGE_HINTING_UNSUPPORTED, "invalid");
  return on;
};

export const balloonSchema: ObjectSchema<BalloonConfig> = objectSchema<BalloonConfig>("Balloon", {
  amount_mib: required(amountMib),
  deflate_on_oom: required(boolean),
  stats_polling_interval_s: defaulted(interval, 0),
  free_page_hinting: defaulted(freePageHinting, false),
  free_page_reporting: defaulted(boolean, false),
});

export const balloonUpdateSchema: ObjectSchema<BalloonUpdate> = objectSchema<BalloonUpdate>("BalloonUpdate", {
  amount_mib: required(amountMib),
});

export const balloonStatsUpdateSchema: ObjectSchema<BalloonStatsUpdate> = objectSchema<BalloonStatsUpdate>("BalloonStatsUpdate", {
  stats_polling_interval_s: required(interval),
});

/** GET /balloon/statistics (yaml BalloonStats): the sizes always, the guest's figures once it has reported them. */
export interface BalloonStatsData {
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
