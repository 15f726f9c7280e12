/**
 * The VMM behind the API's Controller: builds and starts the VM on InstanceStart and forwards pause,
 * resume, Ctrl+Alt+Del, metrics flushes and drive swaps to it. It has the shape of the API's VmmBackend
 * (src/api/vmm-backend.ts) without importing it, since vmm sits below api; the CLI hands it to the
 * Controller, where the compiler checks the fit.
 *
 * How the guest's end is handled follows Firecracker: its process exits when the guest resets (exit
 * code 0) or a vCPU fails (non-zero); before that it writes the metrics once more (Vmm's Drop). Here
 * the backend writes that last line and calls `onExit`; the caller tells the Controller and ends the
 * process with `exit.exitCode`.
 */
import { closeSync, constants, openSync } from "node:fs";
import type { VmConfig } from "../config/vm-config.js";
import type { LoggerConfig } from "../config/logger.js";
import { buildVm } from "./builder.js";
import { restoreVm, type NetworkOverride } from "./restore.js";
import type { SnapshotType } from "./snapshot/state-codec.js";
import { createLogger, type Logger, type LogLevel, type LogSettings } from "./logger.js";
import type { MetricsRecorder } from "./metrics.js";
import type { Vmm, VmExit } from "./vmm.js";

/** Firecracker's DEFAULT_LEVEL (logger/logging.rs) when the logger config names none. */
export const DEFAULT_API_LOG_LEVEL: LogLevel = "Info";

export interface ApiBackendOptions {
  /** Where the guest's COM1 output goes (Firecracker: the process's stdout), or null to discard it. */
  serialOutputFd: number | null;
  /** Where the log goes when the logger config names no log_path. */
  defaultLogFd: number;
  /** Counts API requests and writes the metrics lines; opened here if the config has `metrics`. */
  metrics: MetricsRecorder;
  /** Called once the guest runs (for example to attach the console). */
  onStarted?(): void;
  /** Called once, after the last metrics line, when the guest has ended for whatever reason. */
  onExit(exit: VmExit): void;
}

/** The backend was asked for something it cannot do in its state, or a log file would not open. */
export class ApiBackendError extends Error {
  override readonly name = "ApiBackendError";
}

interface LogTarget {
  settings: LogSettings;
  /** Closes the fd if this target opened it. */
  close(): void;
}

export class ApiVmmBackend {
  private vmm?: Vmm;

  constructor(private readonly options: ApiBackendOptions) {}

  async start(config: VmConfig): Promise<void> {
    await this.launch(config.logger, config.metrics, async (log) => {
      const vmm = await buildVm(config, { serialOutputFd: this.options.serialOutputFd, log });
      return { vmm, config, paused: false };
    });
  }

  /**
   * PUT /snapshot/load: builds the VM from the snapshot and starts its threads, paused unless `resume_vm`. The
   * logger and metrics settings are this process's (Firecracker too takes them from the new process's API calls).
   */
  async loadSnapshot(params: { snapshot_path: string; mem_file_path: string; track_dirty_pages: boolean; resume_vm: boolean; network_overrides: NetworkOverride[] }): Promise<VmConfig> {
    let restored: VmConfig | undefined;
    const startedAt = performance.now();
    await this.launch(undefined, undefined, async (log) => {
      const vmm = await restoreVm({
        snapshotPath: params.snapshot_path, memFilePath: params.mem_file_path, trackDirtyPages: params.track_dirty_pages,
        networkOverrides: params.network_overrides, serialOutputFd: this.options.serialOutputFd, log,
      });
      restored = vmm.config!;
      return { vmm, config: restored, paused: !params.resume_vm };
    });
    this.options.metrics.record("latencies_us", "load_snapshot", microsecondsSince(startedAt));
    return restored!;
  }

  /** PUT /snapshot/create on the paused VM. */
  async createSnapshot(params: { snapshot_type?: SnapshotType; snapshot_path: string; mem_file_path: string }): Promise<void> {
    const vmm = this.running();
    const startedAt = performance.now();
    const type = params.snapshot_type ?? "Full";
    await vmm.snapshot({ snapshotPath: params.snapshot_path, memFilePath: params.mem_file_path, type });
    this.options.metrics.record("latencies_us", type === "Full" ? "full_create_snapshot" : "diff_create_snapshot", microsecondsSince(startedAt));
  }

  /** Opens the log and metrics, makes the VM with `make` and starts it; on failure releases it all. */
  private async launch(
    loggerConfig: LoggerConfig | undefined,
    metricsConfig: VmConfig["metrics"],
    make: (log: LogSettings) => Promise<{ vmm: Vmm; config: VmConfig; paused: boolean }>,
  ): Promise<void> {
    if (this.vmm !== undefined) throw new ApiBackendError("the microVM has already been started");
    const log = openLogTarget(loggerConfig, this.options.defaultLogFd);
    let vmm: Vmm | undefined;
    let made;
    try {
      if (metricsConfig !== undefined) this.options.metrics.open(metricsConfig);
      made = await make(log.settings);
      vmm = made.vmm;
      await vmm.start({ paused: made.paused });
    } catch (error) {
      await vmm?.stop("the VM failed to start");
      log.close();
      throw error;
    }
    const config = made.config;
    this.vmm = vmm;
    const logger = createLogger({ ...log.settings, origin: "vmm" });
    logger("Info", `microVM ${made.paused ? "restored, paused" : "started"} (${config["machine-config"].vcpu_count} vCPUs, ${config["machine-config"].mem_size_mib} MiB)`);
    void vmm.whenExited().then((exit) => this.ended(vmm, exit, logger, log));
    this.options.metrics.startPeriodic(vmm);
    this.options.onStarted?.();
  }

  async pause(): Promise<void> {
    const vmm = this.running();
    const startedAt = performance.now();
    await vmm.pause();
    this.options.metrics.record("latencies_us", "pause_vm", microsecondsSince(startedAt));
  }

  async resume(): Promise<void> {
    const vmm = this.running();
    const startedAt = performance.now();
    vmm.resume();
    this.options.metrics.record("latencies_us", "resume_vm", microsecondsSince(startedAt));
  }

  sendCtrlAltDel(): Promise<void> {
    return this.running().sendCtrlAltDel();
  }

  flushMetrics(): Promise<void> {
    return this.options.metrics.flush(this.running());
  }

  async updateDrivePath(driveId: string, path: string): Promise<void> {
    await this.running().updateDrivePath(driveId, path);
  }

  /** Host input for the guest's serial console; dropped when no VM runs. */
  serialInput(bytes: Uint8Array): void {
    this.vmm?.serialInput(bytes);
  }

  /** Stops the VM if one runs (onExit follows); resolves once it has stopped. */
  async stop(message: string): Promise<void> {
    await this.vmm?.stop(message);
  }

  private running(): Vmm {
    if (this.vmm === undefined) throw new ApiBackendError("the microVM has not been started");
    return this.vmm;
  }

  private async ended(vmm: Vmm, exit: VmExit, logger: Logger, log: LogTarget): Promise<void> {
    const { metrics } = this.options;
    metrics.stopPeriodic();
    if (exit.reason === "vcpu-fault") metrics.count("vcpu", "failures");
    logger(exit.exitCode === 0 ? "Info" : "Error", `microVM ended (${exit.reason}, exit code ${exit.exitCode}): ${exit.message}`);
    try {
      await metrics.flush(vmm);
    } catch (error) {
      logger("Error", `failed to write metrics while stopping: ${(error as Error).message}`);
    }
    log.close();
    this.options.onExit(exit);
  }
}

/**
 * Where the log goes and how lines look: the config's log_path, else `defaultFd`; level "Off" sends it to
 * /dev/null. show_level and show_log_origin default to off, as in Firecracker.
 */
function openLogTarget(logger: LoggerConfig | undefined, defaultFd: number): LogTarget {
  const level = logger?.level ?? DEFAULT_API_LOG_LEVEL;
  const look = { showLevel: logger?.show_level ?? false, showOrigin: logger?.show_log_origin ?? false, module: logger?.module };
  // With "Off" nothing should reach a reader; the lowest level keeps the writers cheap.
  if (level === "Off") return openLogFile("/dev/null", { level: "Error", ...look });
  if (logger?.log_path === undefined) return { settings: { fd: defaultFd, level, ...look }, close: () => {} };
  return openLogFile(logger.log_path, { level, ...look });
}

/**
 * Opens a log file as Firecracker does (utils::open_file_nonblock: read-write, created, non-blocking, so
 * a FIFO without a reader neither blocks nor fails), plus O_APPEND so earlier lines are kept.
 */
function openLogFile(path: string, look: Omit<LogSettings, "fd">): LogTarget {
  let fd: number;
  try {
    // A new file is rw-r--r-- (before the umask): only petasan writes it.
    fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_APPEND | constants.O_NONBLOCK, 0o644);
  } catch (error) {
    throw new ApiBackendError(`log_path ${path}: cannot open: ${(error as Error).message}`, { cause: error });
  }
  return { settings: { fd, ...look }, close: () => closeSync(fd) };
}

function microsecondsSince(startMs: number): number {
  return Math.round((performance.now() - startMs) * 1000);
}
