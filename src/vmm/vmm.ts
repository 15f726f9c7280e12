/**
 * A running VM: the device thread, one thread per vCPU, and the lifecycle around them (pause, resume,
 * stop, guest reset). Lives on the controlling thread (CLI or API), which never blocks on the guest.
 */
import { EventEmitter } from "node:events";
import { MessageChannel, type MessagePort } from "node:worker_threads";
import { signalEventFd } from "../sys/eventfd.js";
import type { Vm } from "../kvm/vm.js";
import type { Kvm } from "../kvm/kvm.js";
import { VcpuHandle } from "./vcpu/handle.js";
import type { VcpuRegisterData } from "./register-states.js";
import type { VcpuWorkerMessage } from "./vcpu/protocol.js";
import type { BalloonOp, BalloonState, DeviceThreadData, DeviceThreadEvent, DeviceThreadRequest } from "./device-thread/protocol.js";
import { VcpuCommand, VcpuState } from "./vcpu/control.js";
import type { RateLimiterUpdate } from "../config/rate-limiter.js";
import { hostVm, type DeviceThreadHost, type HostedVmHandle } from "./device-thread-host.js";
import { kvmclockCtrl } from "../kvm/state.js";
import type { VmConfig } from "../config/vm-config.js";
import type { SnapshotParts } from "./device-thread/snapshot.js";
import { writeSnapshotState, type SnapshotOptions } from "./snapshot/create.js";

/** How long a VM's devices may take to leave the device thread once told to stop. */
const DEVICES_STOP_TIMEOUT_MS = 2000;
/** The same when the device thread serves other VMs too. */
const SHARED_DEVICES_STOP_TIMEOUT_MS = 60_000;

/** A vCPU thread is a fresh worker that loads its modules first; on a loaded host that can take a while. */
const VCPU_START_TIMEOUT_MS = 10_000;

export type VmState = "Running" | "Paused" | "Stopped";

/** How a VM ended. `exitCode` is what the CLI exits with. */
export interface VmExit {
  reason: "guest-reset" | "guest-poweroff" | "vcpu-fault" | "stopped" | "internal-error";
  exitCode: number;
  message: string;
}

/** KVM_SYSTEM_EVENT_* (api.rst 5, kvm_run system_event). */
const SYSTEM_EVENT_SHUTDOWN = 1;
const SYSTEM_EVENT_RESET = 2;

export interface VmmParts {
  kvm: Kvm;
  vm: Vm;
  vcpus: VcpuHandle[];
  deviceThreadData: Omit<DeviceThreadData, "port" | "controlEventFd" | "exitEventFd">;
  exitEventFd: number;
  controlEventFd: number;
  /** Called once everything has stopped (close fds, unmap memory). */
  release: () => void;
  /** The configuration the VM was built from: saved in snapshots (absent: the VM cannot be snapshotted). */
  config?: VmConfig;
}

/** The guest reset the machine: the i8042's reset line (served on a vCPU or the device thread) or KVM_SYSTEM_EVENT_RESET. */
const GUEST_RESET: VmExit = { reason: "guest-reset", exitCode: 0, message: "the guest reset the machine (reboot)" };

export class Vmm extends EventEmitter<{ exit: [VmExit] }> {
  private state: VmState = "Running";
  private readonly port: MessagePort;
  private readonly deviceThreadPort: MessagePort;
  private deviceThread?: DeviceThreadHost;
  /** Resolves once this VM's devices have left the device thread (stopped, failed, or the thread is gone). */
  private devicesGone?: Promise<void>;
  private onThreadLost = (_message: string) => {};
  /** This VM as its device thread knows it. */
  private readonly vmHandle: HostedVmHandle = { onThreadLost: (message) => this.onThreadLost(message) };
  private stopping?: Promise<VmExit>;
  private readonly exited: Promise<VmExit>;
  private nextRequestId = 1;
  private readonly metricsWaiters = new Map<number, (m: Record<string, unknown>) => void>();
  private readonly doneWaiters = new Map<number, (error?: string) => void>();
  private readonly snapshotWaiters = new Map<number, (r: { parts?: SnapshotParts; error?: string }) => void>();
  private readonly balloonWaiters = new Map<number, (answer: { state?: BalloonState; error?: string }) => void>();

  constructor(private readonly parts: VmmParts) {
    super();
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.deviceThreadPort = port2;
    this.exited = new Promise((resolve) => this.once("exit", resolve));
  }

  /** The configuration the VM was built (or restored) from. */
  get config(): VmConfig | undefined {
    return this.parts.config;
  }

  get vmState(): VmState {
    return this.state;
  }

  /**
   * Starts the device thread and the vCPU threads together, the vCPUs held paused until the device thread reports
   * its devices ready (restored, for a snapshot), so no guest code runs before them: a held vCPU thread has only
   * re-entered KVM_RUN with immediate_exit, which returns without running the guest (api.rst). Starting a thread costs
   * more than the rest of a restore, so the two starts overlap instead of following each other. Resolves once the
   * guest is running, or, with `paused` (a restored snapshot not resumed yet), once every vCPU thread waits paused.
   */
  async start(opts: { paused?: boolean } = {}): Promise<void> {
    const data: DeviceThreadData = {
      ...this.parts.deviceThreadData,
      exitEventFd: this.parts.exitEventFd,
      controlEventFd: this.parts.controlEventFd,
      port: this.deviceThreadPort,
    };
    // The VM's devices go on the process's device thread, shared with its other VMs (device-thread-host.ts); its events
    // come back on the VM's own port.
    let goneNow!: () => void;
    this.devicesGone = new Promise((resolve) => (goneNow = resolve));
    const devicesReady = new Promise<void>((resolve, reject) => {
      this.port.on("message", (e: DeviceThreadEvent) => {
        if (e.kind === "ready") resolve();
        else if (e.kind === "stopped") goneNow();
        else if (e.kind === "failed") {
          goneNow();
          this.onDeviceEvent(e, reject);
        } else this.onDeviceEvent(e, reject);
      });
      this.onThreadLost = (message) => {
        goneNow();
        reject(new Error(message));
        void this.finish({ reason: "internal-error", exitCode: 1, message });
      };
      this.deviceThread = hostVm(data, this.vmHandle);
    });
    // Each thread is a fresh worker that boots an isolate and loads its modules first (tens to hundreds of ms):
    // the vCPU threads start now, beside the device thread, but held paused, i.e. out of the guest, so no exit
    // reaches devices that are not attached (or restored) yet. If the device thread fails, finish() stops them.
    for (const v of this.parts.vcpus) v.control.command = VcpuCommand.Pause;
    const registers = this.vcpuRegisterData();
    for (const v of this.parts.vcpus) {
      v.start(registers, {
        onMessage: (m) => this.onVcpuMessage(m),
        onError: (err) => void this.finish({ reason: "internal-error", exitCode: 1, message: `vCPU ${v.vcpu.id} thread crashed: ${err.stack ?? err}` }),
      });
    }
    // A vCPU thread that fails to start ends the VM: then the device thread is stopped and may never say ready.
    const ended = this.exited.then((e) => Promise.reject(new Error(`the VM ended while starting: ${e.message}`)));
    ended.catch(() => {});
    await Promise.race([devicesReady, ended]);
    if (!opts.paused && this.stopping === undefined) for (const v of this.parts.vcpus) v.resume();
    // Like Firecracker's resume, "started" means every vCPU thread is in its run loop (or has already ended).
    const until = opts.paused ? VcpuState.Paused : VcpuState.Running;
    await Promise.all(this.parts.vcpus.map(async (v) => {
      await v.control.untilState(until, VCPU_START_TIMEOUT_MS);
      if (v.control.state === VcpuState.Starting) throw new Error(`vCPU ${v.vcpu.id} did not start within ${VCPU_START_TIMEOUT_MS} ms`);
    }));
    if (opts.paused) this.state = "Paused";
  }

  /** What each vCPU thread needs to serve device registers itself: the register files the device thread owns. */
  private vcpuRegisterData(): VcpuRegisterData {
    const d = this.parts.deviceThreadData;
    return {
      vmFd: d.vmFd, legacy: d.legacyStates, virtio: d.virtio.map((v) => ({ base: v.base, state: v.registers, name: `virtio-${v.backend.kind} ${v.backend.id}` })),
      serialOutputFd: d.serialOutputFd, log: d.log,
      userDevices: d.userDevices.filter((u) => u.shared !== undefined),
      memory: d.userDevices.some((u) => u.shared !== undefined) ? d.memory : [],
      ...(d.dirtyPages && { dirtyPages: d.dirtyPages }),
    };
  }

  /**
   * Saves the paused VM: vCPU state here (the vCPU threads are parked), devices, VM-wide KVM state and guest
   * RAM on the device thread in one step, then the state file. Firecracker's PUT /snapshot/create.
   */
  async snapshot(opts: SnapshotOptions): Promise<void> {
    if (this.state !== "Paused") throw new Error(`the VM must be paused to take a snapshot (it is ${this.state})`);
    const config = this.parts.config;
    if (!config) throw new Error("this VM was built without a configuration to save");
    // Devices written by the user without saveState() are refused by the device thread, naming them. A VM on 2M huge
    // pages is saved as Firecracker saves one; it is its load from the memory file that is refused (restore.ts).
    const tracking = config["machine-config"].track_dirty_pages;
    if (opts.type === "Diff" && !tracking) throw new Error("Diff snapshots need dirty page tracking: set machine-config track_dirty_pages (or load the snapshot with track_dirty_pages)");
    await writeSnapshotState(opts, {
      config,
      kvm: this.parts.kvm,
      vcpus: this.parts.vcpus.map((v) => v.vcpu),
      memory: this.parts.deviceThreadData.memory,
      deviceThreadPart: () => {
        const id = this.nextRequestId++;
        return new Promise((resolve) => {
          this.snapshotWaiters.set(id, resolve);
          this.post({ kind: "snapshot", id, memFilePath: opts.memFilePath, diff: opts.type === "Diff", trackDirtyPages: tracking });
        });
      },
    });
  }

  private onDeviceEvent(e: DeviceThreadEvent, reject: (e: Error) => void): void {
    switch (e.kind) {
      case "guest-reset":
        void this.finish(GUEST_RESET);
        break;
      case "metrics":
        this.metricsWaiters.get(e.id)?.(e.metrics);
        this.metricsWaiters.delete(e.id);
        break;
      case "done":
        this.doneWaiters.get(e.id)?.(e.error);
        this.doneWaiters.delete(e.id);
        break;
      case "snapshot":
        this.snapshotWaiters.get(e.id)?.(e);
        this.snapshotWaiters.delete(e.id);
        break;
      case "balloon":
        this.balloonWaiters.get(e.id)?.(e);
        this.balloonWaiters.delete(e.id);
        break;
      case "failed":
        reject(new Error(e.error));
        void this.finish({ reason: "internal-error", exitCode: 1, message: `device thread failed: ${e.error}` });
        break;
      case "ready":
      case "stopped":
        break;
    }
  }

  private onVcpuMessage(m: VcpuWorkerMessage): void {
    switch (m.kind) {
      case "fatal":
        void this.finish({ reason: "vcpu-fault", exitCode: 1, message: `vCPU ${m.vcpu}: ${m.reason}\n${m.registers}` });
        break;
      case "guest-reset":
        void this.finish(GUEST_RESET);
        break;
      case "system-event":
        if (m.type === SYSTEM_EVENT_RESET) void this.finish(GUEST_RESET);
        else if (m.type === SYSTEM_EVENT_SHUTDOWN) void this.finish({ reason: "guest-poweroff", exitCode: 0, message: "the guest powered off" });
        else void this.finish({ reason: "vcpu-fault", exitCode: 1, message: `vCPU ${m.vcpu}: system event ${m.type} (guest crash)` });
        break;
      case "started":
      case "stopped":
        break;
    }
  }

  private post(req: DeviceThreadRequest): void {
    this.port.postMessage(req);
    signalEventFd(this.parts.controlEventFd);
  }

  /** Host input for the guest's serial console. */
  serialInput(bytes: Uint8Array): void {
    if (this.state !== "Stopped") this.post({ kind: "serial-input", bytes });
  }

  /**
   * Queues Ctrl+Alt+Del on the i8042 (Firecracker's SendCtrlAltDel). Rejects, leaving the VM running, when the
   * guest has not read its keyboard and the controller's buffer has no room (Firecracker answers that with a 400).
   */
  sendCtrlAltDel(): Promise<void> {
    return this.ask((id) => ({ kind: "ctrl-alt-del", id }));
  }

  /** Device metrics, from the device thread (which owns the devices). */
  deviceMetrics(): Promise<Record<string, unknown>> {
    if (this.state === "Stopped") return Promise.resolve({});
    const id = this.nextRequestId++;
    return new Promise((resolve) => {
      this.metricsWaiters.set(id, resolve);
      this.post({ kind: "metrics", id });
    });
  }

  /** Serves drive `driveId` from the image at `path` from now on (PATCH /drives/{id} after boot). */
  updateDrivePath(driveId: string, path: string): Promise<void> {
    return this.ask((id) => ({ kind: "swap-drive", id, driveId, path }));
  }

  /** The guest's MMDS serves this data store (JSON text) from now on. */
  updateMmds(data: string): Promise<void> {
    return this.ask((id) => ({ kind: "mmds-data", id, data }));
  }

  /** The balloon device (PATCH /balloon, PATCH and GET /balloon/statistics, GET /balloon after boot). */
  balloon(op: BalloonOp): Promise<BalloonState> {
    if (this.state === "Stopped") return Promise.reject(new Error("the VM has stopped"));
    const id = this.nextRequestId++;
    return new Promise((resolve, reject) => {
      this.balloonWaiters.set(id, (a) => (a.state ? resolve(a.state) : reject(new Error(a.error ?? "no answer"))));
      this.post({ kind: "balloon", id, op });
    });
  }

  /** Posts a request that the device thread answers with `done`; rejects with its error text. */
  private ask(request: (id: number) => DeviceThreadRequest): Promise<void> {
    if (this.state === "Stopped") return Promise.reject(new Error("the VM has stopped"));
    const id = this.nextRequestId++;
    return new Promise((resolve, reject) => {
      this.doneWaiters.set(id, (error) => (error ? reject(new Error(error)) : resolve()));
      this.post(request(id));
    });
  }

  /** Applies new rate limiters to a running drive or network interface (PATCH /drives, /network-interfaces). */
  updateRateLimiters(update: RateLimiterUpdate): Promise<void> {
    return this.ask((id) => ({ kind: "update-rate-limiters", id, update }));
  }

  vcpuMetrics(): Record<string, number>[] {
    return this.parts.vcpus.map((v) => v.control.snapshotCounters());
  }

  /** CPU time each vCPU thread has used, in ns (0 for one not running yet or stopped). */
  vcpuCpuTimesNs(): number[] {
    return this.parts.vcpus.map((v) => v.cpuTimeNs() ?? 0);
  }

  async pause(): Promise<void> {
    if (this.state !== "Running") throw new Error(`cannot pause a VM that is ${this.state}`);
    await Promise.all(this.parts.vcpus.map((v) => v.pause()));
    // As Firecracker on every pause: the guest's kvmclock page says the host stopped it, so a Linux guest does
    // not count the pause as a soft lockup (api.rst KVM_KVMCLOCK_CTRL; a guest without kvmclock: no-op).
    for (const v of this.parts.vcpus) kvmclockCtrl(v.vcpu);
    this.state = "Paused";
  }

  resume(): void {
    if (this.state !== "Paused") throw new Error(`cannot resume a VM that is ${this.state}`);
    for (const v of this.parts.vcpus) v.resume();
    this.state = "Running";
  }

  /** Stops the VM (idempotent); resolves with how it ended. */
  stop(message = "stopped on request"): Promise<VmExit> {
    return this.finish({ reason: "stopped", exitCode: 0, message });
  }

  /** Resolves when the VM has ended, for whatever reason. */
  whenExited(): Promise<VmExit> {
    return this.exited;
  }

  private finish(exit: VmExit): Promise<VmExit> {
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      for (const v of this.parts.vcpus) v.control.command = VcpuCommand.Stop;
      await Promise.all(this.parts.vcpus.map((v) => v.stop()));
      if (this.deviceThread) {
        const host = this.deviceThread;
        this.post({ kind: "stop" });
        // A thread shared with other VMs may be busy with their work for a while (a snapshot's memory file, a slow
        // fdatasync): it gets far longer before it is taken for stuck, since ending it ends those VMs too.
        const timeoutMs = host.sharedBeyond(this.vmHandle) ? SHARED_DEVICES_STOP_TIMEOUT_MS : DEVICES_STOP_TIMEOUT_MS;
        let timer: NodeJS.Timeout | undefined;
        const gone = await Promise.race([this.devicesGone!.then(() => true), new Promise<false>((r) => { timer = setTimeout(() => r(false), timeoutMs); })]);
        // Cleared, not left to run out: a pending timer would keep the process alive for up to a minute.
        clearTimeout(timer);
        // Devices that do not answer hold the thread (a device stuck in its code): it is ended, with every VM on it.
        if (gone) await host.remove(this.vmHandle);
        else await host.terminate(`the devices of a VM did not stop within ${timeoutMs} ms`);
        this.port.close();
      }
      this.state = "Stopped";
      // Nobody is left to answer requests in flight: answer them here rather than leave callers waiting.
      for (const resolve of this.metricsWaiters.values()) resolve({});
      for (const settle of this.doneWaiters.values()) settle("the VM stopped");
      for (const settle of this.snapshotWaiters.values()) settle({ error: "the VM stopped" });
      this.snapshotWaiters.clear();
      for (const settle of this.balloonWaiters.values()) settle({ error: "the VM stopped" });
      this.balloonWaiters.clear();
      this.metricsWaiters.clear();
      this.doneWaiters.clear();
      this.balloonWaiters.clear();
      this.parts.release();
      this.emit("exit", exit);
      return exit;
    })();
    return this.stopping;
  }
}
