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
import { buildVm } from "../vmm/builder.js";
import { openLogTarget, type LogTarget } from "../vmm/log-target.js";
import { MetricsRecorder } from "../vmm/metrics.js";
import { createLogger, type Logger } from "../vmm/logger.js";
import type { LogLevel, VmConfig } from "../config/index.js";
import type { Vmm, VmExit } from "../vmm/vmm.js";
import { SerialConsole } from "./serial-console.js";
import { readLogLines, type LogLineReader } from "./log-lines.js";
import type { DeviceMetrics, VmMetrics } from "./metrics.js";

export type { VmExit, LogLevel };
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

  /** Use createVm(). `config` has been validated (resolveVmConfig). */
  constructor(readonly config: Readonly<VmConfig>, private readonly options: CreateVmOptions = {}) {
    super();
    this.exited = new Promise((resolve) => (this.settleExit = resolve));
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
      vmm = await buildVm(this.config, { serialOutputFd, log: log.settings });
      await vmm.start();
    } catch (error) {
      await vmm?.stop("the VM failed to start");
      await this.ended({ reason: "internal-error", exitCode: 1, message: `the VM failed to start: ${(error as Error).message}` });
      throw error;
    }
    this.vmm = vmm;
    void vmm.whenExited().then((exit) => this.ended(exit));
    this.console.attachInput((bytes) => vmm.serialInput(bytes));
    this.metricsRecorder.startPeriodic(vmm);
    const machine = this.config["machine-config"];
    this.logger("Info", `VM started (${machine.vcpu_count} vCPUs, ${machine.mem_size_mib} MiB)`);
    this.setState("Running");
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

  /** Once, when the VM has ended: last metrics line, then close what start() opened, then tell the caller. */
  private async ended(exit: VmExit): Promise<void> {
    if (this.ending) return this.exited.then(() => {});
    this.ending = true;
    this.console.detachInput();
    this.logger(exit.exitCode === 0 ? "Info" : "Error", `VM ended (${exit.reason}, exit code ${exit.exitCode}): ${exit.message}`);
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
