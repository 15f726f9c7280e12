/**
 * One VM, driven from TypeScript: build and start it, pause, resume, stop, await its end, talk to its serial
 * console as a stream, read its metrics, swap a drive's image. Everything a VM owns (KVM fds, guest memory,
 * threads, pipes, log and metrics files) is its own: several VMs run side by side in one process, and
 * stopping one leaves the others running.
 *
 * Lifecycle (as Firecracker's: configured, then started, then paused/resumed, then ended):
 *   Created --start()--> Starting --> Running <--pause()/resume()--> Paused
 *   any state --stop() / the guest resets or powers off / a vCPU fails--> Stopped
 */
import { EventEmitter } from "node:events";
import { closeSync } from "node:fs";
import { newPipe, type PipeFds } from "../sys/pipe.js";
import { buildVm, type HostPlacement } from "../vmm/builder.js";
import { restoreVm, type LoadHugePages, type NetworkOverride, type ReadSnapshot } from "../vmm/restore.js";
import type { SnapshotType } from "../vmm/snapshot/state-codec.js";
import { openLogTarget, type LogTarget } from "../vmm/log-target.js";
import { MetricsRecorder } from "../vmm/metrics.js";
import { createLogger, type Logger } from "../vmm/logger.js";
import type { LogLevel, RateLimiterUpdate, VmConfig } from "../config/index.js";
import type { BalloonGuestStats as BalloonStatistics } from "../devices/virtio/index.js";
import type { Vmm, VmExit } from "../vmm/vmm.js";
import { SerialConsole } from "./serial-console.js";
import { readLogLines, type LogLineReader } from "./log-lines.js";
import type { DeviceMetrics, VmMetrics } from "./metrics.js";
import { resolveUserDevices, type ResolvedUserDevices, type UserDevice } from "./user-devices.js";

export type { VmExit, LogLevel, HostPlacement, BalloonStatistics };
/** Why a VM ended: "guest-reset" and "guest-poweroff" (exit code 0), "stopped" (stop(), code 0), "vcpu-fault" and "internal-error" (code 1). */
export type VmExitReason = VmExit["reason"];

export type VmState = "Created" | "Starting" | "Running" | "Paused" | "Stopped";

/** The events a VirtualMachine emits, with their arguments. */
export interface VmEvents {
  /** The lifecycle state changed. */
  state: [state: VmState];
  /** The VM has ended (once); `exited` resolves with the same value. */
  exit: [exit: VmExit];
  /** One of petasan's log lines for this VM (when the log goes neither to `log.fd` nor to the config's `logger.log_path`). */
  log: [line: string];
}

export interface CreateVmOptions {
  /**
   * Where the guest's serial console (COM1) output goes: "stream" (default) to `vm.console`, "none" to
   * discard it, or `{ fd }` to an open file descriptor (which the caller keeps and closes).
   */
  console?: "stream" | "none" | { fd: number };
  /**
   * petasan's log: `level` unless the config's `logger.level` names one (default "Warning"); `fd` instead of
   * "log" events; whether lines show their level and origin unless the config's `logger` says (default: both).
   */
  log?: { level?: LogLevel; fd?: number; showLevel?: boolean; showOrigin?: boolean };
  /** The instance id in metrics lines (Firecracker's --id) when the VM makes its own MetricsRecorder; default "petasan". */
  id?: string;
  /**
   * The Firecracker-style metrics writer to use, shared with the caller's own counters (an API server counts
   * its requests in it, for example); opened on the config's `metrics` at start, flushed at the end, and
   * left open for the caller to close. Default: the VM's own, closed at the end.
   */
  metrics?: MetricsRecorder;
  /** Devices written by the user, each an ES module loaded onto the thread that runs the VM's devices (see UserDevice). */
  devices?: UserDevice[];
  /**
   * The MMDS data store the guest reads at the config's `mmds-config` address (Firecracker's PUT /mmds before
   * boot): any JSON value. Change it later with updateMmds(). For loadSnapshot() too: a snapshot holds no data store.
   */
  mmds?: unknown;
  /**
   * petasan's host options (Firecracker has none of these): `ksm` advises guest RAM MADV_MERGEABLE (KSM may merge
   * identical pages, once /sys/kernel/mm/ksm/run is 1); `numaNode` binds guest RAM to that host NUMA node (mbind)
   * and pins the vCPU threads to its CPUs (sched_setaffinity). Huge pages are the config's machine-config.huge_pages.
   */
  host?: HostPlacement;
  /**
   * Seccomp filters (compiled classic BPF, struct sock_filter arrays) that the VM's device thread and each
   * vCPU thread install on themselves before serving the guest. Default: none (the program running the
   * library decides; the `petasan` command passes its own, see lib/seccomp.ts).
   */
  seccomp?: { devices: Uint8Array; vcpu: Uint8Array };
}

/** Where a restored VM comes from (Firecracker's PUT /snapshot/load); see loadSnapshot. */
export interface SnapshotSource {
  /** The state file written by snapshot(). */
  snapshotPath: string;
  /** The guest memory file: mapped copy-on-write (MAP_PRIVATE), so pages come in from the page cache on demand. */
  memFilePath: string;
  /** Track dirty pages, so that Diff snapshots of the restored VM can be taken. */
  trackDirtyPages?: boolean;
  /** Run at once (default) or stay Paused after start(). */
  resume?: boolean;
  /** Taps to use instead of the snapshot's (Firecracker's network_overrides). */
  networkOverrides?: readonly NetworkOverride[];
  /** The vsock device's Unix socket instead of the snapshot's uds_path (Firecracker's vsock_override). */
  vsockUdsPath?: string;
  /**
   * Huge pages for the restored guest RAM (Firecracker's load huge_pages): "Snapshot" (default) as the saved VM had
   * them, "None" or "Transparent". "2M" (or "Snapshot" of a VM on 2M pages) is refused, as Firecracker refuses it
   * with a File memory backend: hugetlbfs pages cannot be mapped from the memory file.
   */
  hugePages?: LoadHugePages;
  /**
   * The restored VM's logger and metrics config (as a config's `logger` and `metrics`); the snapshot's, those of the
   * VM it was taken from, are not used. Absent: the log goes where `log` in the options says, and no metrics file.
   */
  logger?: VmConfig["logger"];
  metrics?: VmConfig["metrics"];
}

/** What snapshot() writes. */
export interface SnapshotTarget {
  snapshotPath: string;
  memFilePath: string;
  /** Full (default) or Diff: only the pages written since the last snapshot, at their offsets in a sparse file. */
  type?: SnapshotType;
}

/** A method was called in a state that does not allow it (e.g. pause() on a paused VM). */
export class VmStateError extends Error {
  override readonly name = "VmStateError";
}

const DEFAULT_LOG_LEVEL: LogLevel = "Warning";

export class VirtualMachine extends EventEmitter<VmEvents> {
  /**
   * The guest's serial console: read it for the guest's output (ends when the VM has stopped), write to
   * it for the guest's input. With `console: "none"` or `{ fd }` its readable side is empty.
   */
  readonly console = new SerialConsole();
  /** Resolves (never rejects) when the VM has ended, for whatever reason, including a failed start(). */
  readonly exited: Promise<VmExit>;

  private currentState: VmState = "Created";
  private vmm?: Vmm;
  private starting?: Promise<void>;
  private settleExit!: (exit: VmExit) => void;
  private readonly metricsRecorder: MetricsRecorder;
  /** What start() opened, closed once the VM has ended. */
  private serialPipe?: PipeFds;
  private logPipe?: PipeFds;
  private logTarget?: LogTarget;
  private logReader?: LogLineReader;
  private logger: Logger = () => {};
  private ending = false;
  private readonly userDevices: ResolvedUserDevices;

  /** Use createVm(). `config` has been validated (resolveVmConfig). */
  /** `restoreFrom`: made by loadSnapshot() (with the state file it read); start() restores the VM instead of booting it. */
  constructor(readonly config: Readonly<VmConfig>, private readonly options: CreateVmOptions = {}, private readonly restoreFrom?: SnapshotSource & { snapshot?: ReadSnapshot }) {
    super();
    this.exited = new Promise((resolve) => (this.settleExit = resolve));
    this.userDevices = resolveUserDevices(options.devices ?? []);
    this.metricsRecorder = options.metrics ?? new MetricsRecorder(options.id ?? "petasan");
    if (options.console !== undefined && options.console !== "stream") this.console.noOutput();
  }

  get state(): VmState {
    return this.currentState;
  }

  /**
   * Builds the VM (opens /dev/kvm, maps guest memory, loads the kernel, places devices) and starts its
   * threads; resolves once every vCPU runs. On failure it rejects with the step that failed, releases
   * everything, and the VM is Stopped (`exited` says why).
   */
  start(): Promise<void> {
    if (this.currentState !== "Created") return Promise.reject(new VmStateError(`start(): the VM is ${this.currentState}; a VM starts once`));
    this.setState("Starting");
    this.starting = this.build();
    return this.starting;
  }

  private async build(): Promise<void> {
    let vmm: Vmm | undefined;
    try {
      const serialOutputFd = this.openSerialOutput();
      const log = this.openLog();
      if (this.config.metrics !== undefined) this.metricsRecorder.open(this.config.metrics);
      const from = this.restoreFrom;
      vmm = from
        ? await restoreVm({
          snapshotPath: from.snapshotPath, snapshot: from.snapshot, memFilePath: from.memFilePath, trackDirtyPages: from.trackDirtyPages ?? false,
          networkOverrides: from.networkOverrides, vsockUdsPath: from.vsockUdsPath, hugePages: from.hugePages, serialOutputFd, log: log.settings, seccomp: this.options.seccomp,
          userDevices: this.userDevices.bus, userVirtioDevices: this.userDevices.virtio,
          ...(this.options.mmds !== undefined && { mmdsData: JSON.stringify(this.options.mmds) }),
        })
        : await buildVm(this.config, {
          serialOutputFd, log: log.settings, host: this.options.host, seccomp: this.options.seccomp, userDevices: this.userDevices.bus, userVirtioDevices: this.userDevices.virtio,
          ...(this.options.mmds !== undefined && { mmdsData: JSON.stringify(this.options.mmds) }),
        });
      await vmm.start({ paused: from !== undefined && from.resume === false });
    } catch (error) {
      await vmm?.stop("the VM failed to start");
      await this.ended({ reason: "internal-error", exitCode: 1, message: `the VM failed to start: ${(error as Error).message}` }, { rejected: true });
      throw error;
    }
    this.vmm = vmm;
    void vmm.whenExited().then((exit) => this.ended(exit));
    this.console.attachInput((bytes) => vmm.serialInput(bytes));
    this.metricsRecorder.startPeriodic(vmm);
    const machine = this.config["machine-config"];
    const paused = this.restoreFrom?.resume === false;
    this.logger("Info", `VM ${this.restoreFrom ? (paused ? "restored, paused" : "restored") : "started"} (${machine.vcpu_count} vCPUs, ${machine.mem_size_mib} MiB)`);
    this.setState(paused ? "Paused" : "Running");
  }

  /** Stops every vCPU (resolves once they are all paused); devices keep their state. */
  async pause(): Promise<void> {
    if (this.currentState !== "Running") throw new VmStateError(`pause(): the VM is ${this.currentState}`);
    await this.vmm!.pause();
    this.setState("Paused");
  }

  resume(): void {
    if (this.currentState !== "Paused") throw new VmStateError(`resume(): the VM is ${this.currentState}`);
    this.vmm!.resume();
    this.setState("Running");
  }

  /**
   * Stops the VM from any state (idempotent) and releases everything it holds; resolves with how it ended
   * (`reason` "stopped" unless it had already ended otherwise). Other VMs in the process are untouched.
   */
  async stop(message = "stopped on request"): Promise<VmExit> {
    if (this.currentState === "Created") {
      await this.ended({ reason: "stopped", exitCode: 0, message });
    } else if (this.currentState !== "Stopped") {
      await this.starting?.catch(() => {});
      await this.vmm?.stop(message);
    }
    return this.exited;
  }

  /**
   * Presses Ctrl+Alt+Del on the guest's i8042 keyboard (Linux reboots, which ends the VM). Rejects, and the VM runs
   * on, when the guest has not read its keyboard and the controller's 16-byte buffer has no room.
   */
  sendCtrlAltDel(): Promise<void> {
    return this.live("sendCtrlAltDel()").sendCtrlAltDel();
  }

  /** Serves drive `driveId` from the image at `path` from now on (Firecracker's PATCH /drives after boot). */
  async swapDrive(driveId: string, path: string): Promise<void> {
    await this.live("swapDrive()").updateDrivePath(driveId, path);
  }

  /**
   * New token buckets for a running drive (`device: "drive"`) or network interface (`"net"`), as Firecracker's PATCH
   * /drives and /network-interfaces: a bucket left out is unchanged, one of size 0 is removed.
   */
  async updateRateLimiters(update: RateLimiterUpdate): Promise<void> {
    await this.live("updateRateLimiters()").updateRateLimiters(update);
  }

  /** The guest's MMDS serves `data` (any JSON value) from now on, as Firecracker's PUT /mmds after boot. */
  async updateMmds(data: unknown): Promise<void> {
    await this.live("updateMmds()").updateMmds(JSON.stringify(data));
  }

  /**
   * Writes a snapshot of the paused VM (Firecracker's PUT /snapshot/create): its state file and its memory file.
   * loadSnapshot() makes a VM from them, in this process or another.
   */
  async snapshot(target: SnapshotTarget): Promise<void> {
    if (this.currentState !== "Paused") throw new VmStateError(`snapshot(): the VM is ${this.currentState}; pause() it first`);
    await this.vmm!.snapshot({ snapshotPath: target.snapshotPath, memFilePath: target.memFilePath, type: target.type ?? "Full" });
  }

  /**
   * The balloon's new target in MiB (Firecracker's PATCH /balloon): the guest driver inflates or deflates towards it,
   * and inflated pages go back to the host. Rejects when the config has no balloon, or the guest driver has not
   * started it yet ("Device not activated yet."), or the target exceeds guest RAM.
   */
  async setBalloonTarget(amountMib: number): Promise<void> {
    await this.live("setBalloonTarget()").balloon({ kind: "set-target", amountMib });
  }

  /** A new statistics polling interval (PATCH /balloon/statistics); statistics cannot be turned on or off after boot. */
  async setBalloonStatsInterval(seconds: number): Promise<void> {
    await this.live("setBalloonStatsInterval()").balloon({ kind: "set-stats-interval", seconds });
  }

  /** The balloon's sizes and the guest's last statistics (GET /balloon/statistics; Firecracker's BalloonStats names). */
  async balloonStatistics(): Promise<BalloonStatistics> {
    const state = await this.live("balloonStatistics()").balloon({ kind: "statistics" });
    return state.statistics as unknown as BalloonStatistics;
  }

  /** The balloon's target and polling interval as the device has them now. */
  async balloonState(): Promise<{ amount_mib: number; stats_polling_interval_s: number }> {
    const state = await this.live("balloonState()").balloon({ kind: "get" });
    return { amount_mib: state.amountMib, stats_polling_interval_s: state.statsPollingIntervalS };
  }

  /** Counters since boot: exits per vCPU, each vCPU thread's CPU time, and each device's counters. */
  async metrics(): Promise<VmMetrics> {
    const vmm = this.live("metrics()");
    const vcpuCpuTimeUs = vmm.vcpuCpuTimesNs().map((ns) => Math.floor(ns / 1000));
    return { vcpus: vmm.vcpuMetrics() as VmMetrics["vcpus"], vcpuCpuTimeUs, devices: (await vmm.deviceMetrics()) as unknown as DeviceMetrics };
  }

  /**
   * Writes a Firecracker-style metrics line to the config's `metrics.metrics_path` now (FlushMetrics);
   * without `metrics` in the config it does nothing, as Firecracker's. Rejects with MetricsError when the
   * line cannot be written.
   */
  async flushMetrics(): Promise<void> {
    await this.metricsRecorder.flush(this.live("flushMetrics()"));
  }

  private live(what: string): Vmm {
    if (this.vmm === undefined || this.currentState === "Stopped") throw new VmStateError(`${what}: the VM is ${this.currentState}`);
    return this.vmm;
  }

  private setState(state: VmState): void {
    this.currentState = state;
    this.emit("state", state);
  }

  private openSerialOutput(): number | null {
    const where = this.options.console ?? "stream";
    if (where === "none") return null;
    if (where !== "stream") return where.fd;
    this.serialPipe = newPipe();
    this.console.attachOutput(this.serialPipe.readFd);
    return this.serialPipe.writeFd;
  }

  /** The config's logger.log_path, else `log.fd`, else a pipe whose lines become "log" events. */
  private openLog(): LogTarget {
    const defaults = this.options.log;
    const logger = {
      show_level: defaults?.showLevel ?? true,
      show_log_origin: defaults?.showOrigin ?? true,
      ...this.config.logger,
      level: this.config.logger?.level ?? defaults?.level ?? DEFAULT_LOG_LEVEL,
    };
    let fd = this.options.log?.fd;
    if (fd === undefined && logger.log_path === undefined && logger.level !== "Off") {
      this.logPipe = newPipe();
      this.logReader = readLogLines(this.logPipe.readFd, (line) => this.emit("log", line));
      fd = this.logPipe.writeFd;
    }
    this.logTarget = openLogTarget(logger, fd ?? 2, logger.level);
    this.logger = createLogger({ ...this.logTarget.settings, origin: "vmm" });
    return this.logTarget;
  }

  /**
   * Once, when the VM has ended: last metrics line, then close what start() opened, then tell the caller. `rejected`:
   * the caller is told by start()'s rejection, so the end is logged at Info, not said a second time as an error
   * (`petasan run` printed a failed start twice: the log line and its own).
   */
  private async ended(exit: VmExit, { rejected = false } = {}): Promise<void> {
    if (this.ending) return this.exited.then(() => {});
    this.ending = true;
    this.console.detachInput();
    this.logger(exit.exitCode === 0 || rejected ? "Info" : "Error", `VM ended (${exit.reason}, exit code ${exit.exitCode}): ${exit.message}`);
    this.metricsRecorder.stopPeriodic();
    if (exit.reason === "vcpu-fault") this.metricsRecorder.count("vcpu", "failures");
    // The last line, as Firecracker writes when its Vmm is dropped (a VM that never ran has none).
    if (this.metricsRecorder.isOpen && this.vmm !== undefined) {
      await this.metricsRecorder.flush(this.vmm).catch((error: Error) => this.logger("Error", `failed to write metrics while stopping: ${error.message}`));
    }
    if (this.options.metrics === undefined) this.metricsRecorder.close();
    // The threads that wrote to these ends are gone: closing them gives the readers their end of stream.
    if (this.serialPipe) closeSync(this.serialPipe.writeFd);
    if (this.logPipe) closeSync(this.logPipe.writeFd);
    this.logTarget?.close();
    await this.logReader?.ended;
    if (this.options.console === undefined || this.options.console === "stream") {
      if (!this.serialPipe) this.console.noOutput();
    }
    this.setState("Stopped");
    this.emit("exit", exit);
    this.settleExit(exit);
  }
}
