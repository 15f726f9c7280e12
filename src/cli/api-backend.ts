/**
 * The VM behind the API's Controller, through petasan's public API: builds and starts the VM on
 * InstanceStart and forwards pause, resume, Ctrl+Alt+Del, metrics flushes and drive swaps to it. It has
 * the shape of the API's VmmBackend (src/api/vmm-backend.ts); the Controller's type checks the fit.
 *
 * How the guest's end is handled follows Firecracker: its process exits when the guest resets (exit
 * code 0) or a vCPU fails (non-zero); before that it writes the metrics once more (Vmm's Drop), which the
 * VirtualMachine does; then `onExit` runs, and the caller tells the Controller and ends the process.
 */
import type { BalloonStatsData, RateLimiterUpdate, VmConfig } from "../config/index.js";
import type { BootExtras, LoadExtras, SnapshotCreateParams, SnapshotLoadParams } from "../api/index.js";
import { createVm, loadSnapshot, type CreateVmOptions, type LogLevel, type MetricsRecorder, type VirtualMachine, type VmExit } from "../lib/index.js";

/** Firecracker's DEFAULT_LEVEL (logger/logging.rs) when the logger config names none. */
export const DEFAULT_API_LOG_LEVEL: LogLevel = "Info";

export interface ApiBackendOptions {
  /** Where the guest's COM1 output goes (Firecracker: the process's stdout), or null to discard it. */
  serialOutputFd: number | null;
  /** Where the log goes when the logger config names no log_path. */
  defaultLogFd: number;
  /** Counts API requests and writes the metrics lines; opened by the VM if the config has `metrics`. */
  metrics: MetricsRecorder;
  /** Seccomp filters for the VM's device and vCPU threads (none: no filters). */
  seccomp?: { devices: Uint8Array; vcpu: Uint8Array };
  /** Called once the guest runs (for example to attach the console). */
  onStarted?(): void;
  /** Called once, after the last metrics line, when the guest has ended for whatever reason. */
  onExit(exit: VmExit): void;
}

/** The backend was asked for something it cannot do in its state. */
export class ApiBackendError extends Error {
  override readonly name = "ApiBackendError";
}

export class ApiVmmBackend {
  private vm?: VirtualMachine;

  constructor(private readonly options: ApiBackendOptions) {}

  async start(config: VmConfig, extras: BootExtras = {}): Promise<void> {
    await this.launch(createVm(config, {
      ...this.vmOptions(),
      ...(extras.mmdsData !== undefined && { mmds: JSON.parse(extras.mmdsData) as unknown }),
    }));
  }

  /**
   * PUT /snapshot/load: the VM from the snapshot, started paused unless `resume_vm`. The logger and metrics
   * settings are this process's (Firecracker too takes them from the new process's API calls).
   */
  async loadSnapshot(params: SnapshotLoadParams, extras: LoadExtras = {}): Promise<VmConfig> {
    const startedAt = performance.now();
    const vm = loadSnapshot({
      snapshotPath: params.snapshot_path, memFilePath: params.mem_file_path, trackDirtyPages: params.track_dirty_pages,
      resume: params.resume_vm, networkOverrides: params.network_overrides, vsockUdsPath: params.vsock_override?.uds_path, hugePages: params.huge_pages, logger: extras.logger, metrics: extras.metrics,
    }, {
      ...this.vmOptions(),
      ...(extras.mmdsData !== undefined && { mmds: JSON.parse(extras.mmdsData) as unknown }),
    });
    await this.launch(vm);
    this.options.metrics.record("latencies_us", "load_snapshot", microsecondsSince(startedAt));
    return structuredClone(vm.config) as VmConfig;
  }

  /** PUT /snapshot/create on the paused VM. */
  async createSnapshot(params: SnapshotCreateParams): Promise<void> {
    const vm = this.running();
    const startedAt = performance.now();
    const type = params.snapshot_type ?? "Full";
    await vm.snapshot({ snapshotPath: params.snapshot_path, memFilePath: params.mem_file_path, type });
    this.options.metrics.record("latencies_us", type === "Full" ? "full_create_snapshot" : "diff_create_snapshot", microsecondsSince(startedAt));
  }

  private vmOptions(): CreateVmOptions {
    const { serialOutputFd, defaultLogFd, metrics } = this.options;
    return {
      console: serialOutputFd === null ? "none" : { fd: serialOutputFd },
      // Firecracker's look when its logger config says nothing: no level, no origin.
      log: { fd: defaultLogFd, level: DEFAULT_API_LOG_LEVEL, showLevel: false, showOrigin: false },
      metrics,
      seccomp: this.options.seccomp,
    };
  }

  /** Starts `vm` as this backend's one VM; a failed start releases what it had built and the Controller reports it. */
  private async launch(vm: VirtualMachine): Promise<void> {
    if (this.vm !== undefined) throw new ApiBackendError("the microVM has already been started");
    await vm.start();
    this.vm = vm;
    void vm.exited.then((exit) => this.options.onExit(exit));
    this.options.onStarted?.();
  }

  async pause(): Promise<void> {
    const vm = this.running();
    const startedAt = performance.now();
    await vm.pause();
    this.options.metrics.record("latencies_us", "pause_vm", microsecondsSince(startedAt));
  }

  async resume(): Promise<void> {
    const vm = this.running();
    const startedAt = performance.now();
    vm.resume();
    this.options.metrics.record("latencies_us", "resume_vm", microsecondsSince(startedAt));
  }

  sendCtrlAltDel(): Promise<void> {
    return this.running().sendCtrlAltDel();
  }

  flushMetrics(): Promise<void> {
    return this.running().flushMetrics();
  }

  async updateDrivePath(driveId: string, path: string): Promise<void> {
    await this.running().swapDrive(driveId, path);
  }

  async updateRateLimiters(update: RateLimiterUpdate): Promise<void> {
    await this.running().updateRateLimiters(update);
  }

  async updateMmds(dataJson: string): Promise<void> {
    await this.running().updateMmds(JSON.parse(dataJson) as unknown);
  }

  async updateBalloon(amountMib: number): Promise<void> {
    await this.running().setBalloonTarget(amountMib);
  }

  async updateBalloonStatsInterval(seconds: number): Promise<void> {
    await this.running().setBalloonStatsInterval(seconds);
  }

  async balloonStatistics(): Promise<BalloonStatsData> {
    return await this.running().balloonStatistics();
  }

  /** Host input for the guest's serial console; dropped when no VM runs. */
  serialInput(bytes: Uint8Array): void {
    this.vm?.console.write(bytes);
  }

  /** Stops the VM if one runs (onExit follows); resolves once it has stopped. */
  async stop(message: string): Promise<void> {
    await this.vm?.stop(message);
  }

  private running(): VirtualMachine {
    if (this.vm === undefined) throw new ApiBackendError("the microVM has not been started");
    return this.vm;
  }
}

function microsecondsSince(startMs: number): number {
  return Math.round((performance.now() - startMs) * 1000);
}
