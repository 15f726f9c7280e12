/** The Controller's only way to reach the VMM; tests inject a fake. */
import type { VmConfig } from "../config/index.js";
import type { SnapshotCreateParams, SnapshotLoadParams } from "./snapshot-bodies.js";

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
  /** Writes a snapshot of the paused VM (PUT /snapshot/create). */
  createSnapshot(params: SnapshotCreateParams): Promise<void>;
  /** Builds the VM from a snapshot instead of booting (PUT /snapshot/load); resolves with the VM's config once it is paused or running. */
  loadSnapshot(params: SnapshotLoadParams): Promise<VmConfig>;
}
