/**
 * Drive / PartialDrive (firecracker-api.yaml; Firecracker vmm_config/drive.rs). petasan has only
 * virtio-block, so `path_on_host` is required and vhost-user's `socket` is refused.
 */
import { optionalRateLimiter, type RateLimiterConfig } from "./rate-limiter.js";
import {
  boolean,
  defaulted,
  nonEmptyString,
  objectSchema,
  oneOf,
  optional,
  required,
  resourceId,
  string,
  type ObjectSchema,
} from "./schema.js";

export type CacheType = "Unsafe" | "Writeback";
export type IoEngine = "Sync" | "Async";

export interface DriveConfig {
  drive_id: string;
  path_on_host: string;
  /** The root device is listed first and named in the kernel command line (root=). */
  is_root_device: boolean;
  is_read_only: boolean;
  /** With is_root_device, boot from root=PARTUUID=<partuuid> instead of /dev/vda. */
  partuuid?: string;
  /** "Unsafe" ignores guest flushes; "Writeback" honours them. */
  cache_type: CacheType;
  /** Stored for compatibility; petasan's block device does synchronous I/O either way. */
  io_engine: IoEngine;
  /** Accepted and stored, not enforced. */
  rate_limiter?: RateLimiterConfig;
}

/** PATCH /drives/{id} after boot: swap the backing file and/or the (stored) rate limiter. */
export interface DriveUpdate {
  drive_id: string;
  path_on_host?: string;
  rate_limiter?: RateLimiterConfig;
}

export const driveSchema: ObjectSchema<DriveConfig> = objectSchema<DriveConfig>(
  "Drive",
  {
    drive_id: required(resourceId),
    path_on_host: required(nonEmptyString),
    is_root_device: required(boolean),
    // Firecracker's virtio-block reads an absent is_read_only as false (block/virtio/device.rs).
    is_read_only: defaulted(boolean, false),
    partuuid: optional(string),
    cache_type: defaulted(oneOf<CacheType>(["Unsafe", "Writeback"]), "Unsafe"),
    io_engine: defaulted(oneOf<IoEngine>(["Sync", "Async"]), "Sync"),
    rate_limiter: optionalRateLimiter,
  },
  { socket: "vhost-user block devices (give path_on_host for a virtio-block drive)" },
);

export const driveUpdateSchema: ObjectSchema<DriveUpdate> = objectSchema<DriveUpdate>("PartialDrive", {
  drive_id: required(resourceId),
  path_on_host: optional(nonEmptyString),
  rate_limiter: optionalRateLimiter,
});
