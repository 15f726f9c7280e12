/**
 * What `createVm` accepts: Firecracker's config-file JSON (the `--config-file` format, kebab-case keys,
 * as Firecracker documents it), as an object or as JSON text. Fields Firecracker lets a file leave out are
 * optional here too; the result is checked by the same parser as `--config-file` and the REST API
 * (config/vm-resources.ts parseVmConfig), so a bad config gives the same one-line error everywhere.
 */
import {
  ConfigError,
  parseJsonText,
  parseVmConfig,
  type BalloonConfig,
  type BootSourceConfig,
  type DriveConfig,
  type EntropyConfig,
  type LoggerConfig,
  type MachineConfig,
  type MetricsConfig,
  type MmdsConfig,
  type NetworkInterfaceConfig,
  type VmConfig,
  type VsockConfig,
} from "../config/index.js";

/** `T` with the fields `K` optional (they have defaults). */
type WithDefaults<T, K extends keyof T> = Omit<T, K> & Partial<Pick<T, K>>;

/** A Firecracker config file's content (vm_config.json), as written by hand: defaulted fields may be left out. */
export interface FirecrackerVmConfig {
  "boot-source": BootSourceConfig;
  /** Default: 1 vCPU, 128 MiB (Firecracker's defaults). */
  "machine-config"?: WithDefaults<MachineConfig, "smt" | "track_dirty_pages" | "cpu_template" | "huge_pages">;
  drives?: WithDefaults<DriveConfig, "is_read_only" | "cache_type" | "io_engine">[];
  "network-interfaces"?: NetworkInterfaceConfig[];
  entropy?: EntropyConfig;
  vsock?: VsockConfig;
  /** The guest's metadata service (Firecracker's MMDS): version, interfaces, address; its data is CreateVmOptions.mmds. */
  "mmds-config"?: MmdsConfig;
  /** A virtio-balloon device (Firecracker's Balloon). */
  balloon?: WithDefaults<BalloonConfig, "stats_polling_interval_s" | "free_page_hinting" | "free_page_reporting">;
  /** Where petasan's own log lines go; without `log_path`, to the VM's "log" event. */
  logger?: LoggerConfig;
  /** Firecracker-style metrics lines to `metrics_path` (periodically, on flushMetrics(), and at the end). */
  metrics?: WithDefaults<MetricsConfig, "emit_id">;
}

/** Fails to compile when VmConfig gains a section FirecrackerVmConfig does not accept. */
type NoSectionMissing<Missing extends never> = Missing;
export type FirecrackerVmConfigCoversVmConfig = NoSectionMissing<Exclude<keyof VmConfig, keyof FirecrackerVmConfig>>;

/** Thrown by createVm for a config that is not valid; `field` names the offending field. */
export class VmConfigError extends Error {
  override readonly name = "VmConfigError";
  constructor(readonly field: string, message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** Checks `input` (an object or JSON text) and fills in defaults; throws VmConfigError. */
export function resolveVmConfig(input: FirecrackerVmConfig | string): VmConfig {
  try {
    return parseVmConfig(typeof input === "string" ? parseJsonText(input) : input);
  } catch (error) {
    if (error instanceof ConfigError) throw new VmConfigError(error.field, `invalid VM config: ${error.message}`, { cause: error });
    if (typeof input === "string") throw new VmConfigError("", `invalid VM config JSON: ${(error as Error).message}`, { cause: error });
    throw error;
  }
}
