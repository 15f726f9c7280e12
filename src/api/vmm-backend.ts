/** The Controller's only way to reach the VMM; tests inject a fake. */
import type { BalloonStatsData, VmConfig } from "../config/index.js";

export interface VmmBackend {
  /** Builds and boots the VM, resolving once the vCPUs run; rejects with an Error naming what failed. */
  start(config: VmConfig): Promise<void>;
  /** Resolves once every vCPU has acknowledged the pause. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** Injects Ctrl+Alt+Del through the i8042 keyboard controller. */
  sendCtrlAltDel(): Promise<void>;
  /** Writes the metrics now (to the configured metrics_path). */
  flushMetrics(): Promise<void>;
  /** Swaps the file behind a running drive (PATCH /drives/{id}). */
  updateDrivePath(driveId: string, path: string): Promise<void>;
  /** PATCH /balloon: the running balloon's new target. */
  updateBalloon(amountMib: number): Promise<void>;
  /** PATCH /balloon/statistics. */
  updateBalloonStatsInterval(seconds: number): Promise<void>;
  /** GET /balloon/statistics (Firecracker's BalloonStats fields). */
  balloonStatistics(): Promise<BalloonStatsData>;
}
