/** The Controller's only way to reach the VMM; tests inject a fake. */
import type { BalloonStatsData, RateLimiterUpdate, VmConfig } from "../config/index.js";
import type { SnapshotCreateParams, SnapshotLoadParams } from "./snapshot-bodies.js";

/** What the VM boots with besides its VmConfig. */
export interface BootExtras {
  /** The MMDS data store as JSON text, when MMDS has been used before boot. */
  mmdsData?: string;
}

/** What a snapshot is loaded with besides its files: this process's settings, which a snapshot does not hold. */
export interface LoadExtras extends BootExtras {
  logger?: VmConfig["logger"];
  metrics?: VmConfig["metrics"];
}

export interface VmmBackend {
  /** Builds and boots the VM, resolving once the vCPUs run; rejects with an Error naming what failed. */
  start(config: VmConfig, extras?: BootExtras): Promise<void>;
  /** Resolves once every vCPU has acknowledged the pause. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** Injects Ctrl+Alt+Del through the i8042 keyboard controller. */
  sendCtrlAltDel(): Promise<void>;
  /** Writes the metrics now (to the configured metrics_path). */
  flushMetrics(): Promise<void>;
  /** Swaps the file behind a running drive (PATCH /drives/{id}). */
  updateDrivePath(driveId: string, path: string): Promise<void>;
  /** Applies new rate limiters to a running drive or network interface (PATCH). */
  updateRateLimiters(update: RateLimiterUpdate): Promise<void>;
  /** Gives the guest's MMDS the data store's new contents (JSON text) after PUT or PATCH /mmds. */
  updateMmds(dataJson: string): Promise<void>;
  /** Writes a snapshot of the paused VM (PUT /snapshot/create). */
  createSnapshot(params: SnapshotCreateParams): Promise<void>;
  /** Builds the VM from a snapshot instead of booting (PUT /snapshot/load); resolves with the VM's config once it is paused or running. */
  loadSnapshot(params: SnapshotLoadParams, extras?: LoadExtras): Promise<VmConfig>;
  /** PATCH /balloon: the running balloon's new target. */
  updateBalloon(amountMib: number): Promise<void>;
  /** PATCH /balloon/statistics. */
  updateBalloonStatsInterval(seconds: number): Promise<void>;
  /** GET /balloon/statistics (Firecracker's BalloonStats fields). */
  balloonStatistics(): Promise<BalloonStatsData>;
}
