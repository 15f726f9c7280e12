/** A VmmBackend for tests: records every call, fails or holds a call on request. */
import type { BalloonStatsData, RateLimiterUpdate, VmConfig } from "../config/index.js";
import type { BootExtras, LoadExtras, VmmBackend } from "./vmm-backend.js";
import type { SnapshotCreateParams, SnapshotLoadParams } from "./snapshot-bodies.js";

export type BackendCall =
  | { method: "start"; config: VmConfig; extras?: BootExtras }
  | { method: "updateMmds"; dataJson: string }
  | { method: "pause" | "resume" | "sendCtrlAltDel" | "flushMetrics" }
  | { method: "updateDrivePath"; driveId: string; path: string }
  | { method: "updateRateLimiters"; update: RateLimiterUpdate }
  | { method: "createSnapshot"; params: SnapshotCreateParams }
  | { method: "loadSnapshot"; params: SnapshotLoadParams; extras?: LoadExtras }
  | { method: "updateBalloon"; amountMib: number }
  | { method: "updateBalloonStatsInterval"; seconds: number }
  | { method: "balloonStatistics" };

export class FakeVmmBackend implements VmmBackend {
  readonly calls: BackendCall[] = [];
  /** The next call of this method rejects with this error (then the entry is cleared). */
  readonly failNext = new Map<BackendCall["method"], Error>();
  /** Calls of this method wait for the promise before completing (a slow VMM). */
  readonly holdUntil = new Map<BackendCall["method"], Promise<void>>();

  start(config: VmConfig, extras?: BootExtras): Promise<void> {
    return this.record({ method: "start", config: structuredClone(config), ...(extras && { extras }) });
  }
  updateMmds(dataJson: string): Promise<void> {
    return this.record({ method: "updateMmds", dataJson });
  }
  pause(): Promise<void> {
    return this.record({ method: "pause" });
  }
  resume(): Promise<void> {
    return this.record({ method: "resume" });
  }
  sendCtrlAltDel(): Promise<void> {
    return this.record({ method: "sendCtrlAltDel" });
  }
  flushMetrics(): Promise<void> {
    return this.record({ method: "flushMetrics" });
  }
  updateDrivePath(driveId: string, path: string): Promise<void> {
    return this.record({ method: "updateDrivePath", driveId, path });
  }
  updateRateLimiters(update: RateLimiterUpdate): Promise<void> {
    return this.record({ method: "updateRateLimiters", update: structuredClone(update) });
  }

  createSnapshot(params: SnapshotCreateParams): Promise<void> {
    return this.record({ method: "createSnapshot", params });
  }
  /** Answers with `loadedConfig` (set it in a test that needs the restored VM's configuration). */
  loadedConfig?: VmConfig;
  async loadSnapshot(params: SnapshotLoadParams, extras?: LoadExtras): Promise<VmConfig> {
    await this.record({ method: "loadSnapshot", params, ...(extras && { extras }) });
    if (!this.loadedConfig) throw new Error("FakeVmmBackend.loadedConfig is not set");
    return this.loadedConfig;
  }

  updateBalloon(amountMib: number): Promise<void> {
    return this.record({ method: "updateBalloon", amountMib });
  }
  updateBalloonStatsInterval(seconds: number): Promise<void> {
    return this.record({ method: "updateBalloonStatsInterval", seconds });
  }
  /** What balloonStatistics() answers. */
  balloonStats: BalloonStatsData = { target_pages: 0, actual_pages: 0, target_mib: 0, actual_mib: 0 };
  async balloonStatistics(): Promise<BalloonStatsData> {
    await this.record({ method: "balloonStatistics" });
    return { ...this.balloonStats };
  }

  private async record(call: BackendCall): Promise<void> {
    this.calls.push(call);
    await this.holdUntil.get(call.method);
    const failure = this.failNext.get(call.method);
    if (failure === undefined) return;
    this.failNext.delete(call.method);
    throw failure;
  }
}
