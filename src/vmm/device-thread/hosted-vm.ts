/**
 * One VM on the device thread: its devices, buses, requests port and exit server, on the thread's shared event loop
 * through its own VmFds. Opened by open(), ended by close() (on the controller's "stop", or when one of its handlers
 * failed); either way its fds leave the loop and its devices are closed while the thread's other VMs run on.
 *
 * Failure isolation: what this VM's devices throw while serving (a queue kick, a host fd, a timer, a handed-over exit,
 * a request) ends this VM only: the exception is caught by its VmFds (or, for requests, answered as an error), the VM
 * is closed and "failed" goes to its own controller. Not isolated, because they share the thread: a device that
 * blocks or loops forever stalls every VM on the thread (as it stalled its own VM's data path before), a fatal error
 * of the thread itself (out of memory, epoll_wait failing) ends them all (DeviceHostEvent "host-failed"), and a
 * system call outside the thread's seccomp filter ends the process, as it does on any petasan thread.
 */
import { receiveMessageOnPort } from "node:worker_threads";
import { Vm } from "../../kvm/vm.js";
import { KvmRunView } from "../../kvm/run.js";
import { Bus } from "../../devices/bus.js";
import { ExitMailbox, VcpuControl } from "../vcpu/control.js";
import { createLogger, type Logger } from "../logger.js";
import type { EventLoop } from "./event-loop.js";
import { drainEventFd } from "../../sys/eventfd.js";
import { ExitServer } from "./exit-server.js";
import { attachLegacyDevices, LEGACY_GSIS, type LegacyDevices } from "./legacy-devices.js";
import { attachVirtioDevices, balloonRequest, closeAttached, swapDriveImage, updateRateLimiters, type AttachedVirtioDevice } from "./virtio-devices.js";
import { MmdsService } from "../../devices/mmds/index.js";
import { guestMemoryOver } from "../../memory/host-mapping.js";
import { logRateLimitMetrics } from "../../devices/log-rate-limit.js";
import { attachUserDevices, type AttachedUserDevice, type LoadedUserDevice, type UserVirtioDeviceFactory } from "./user-devices.js";
import { kvmIrqLine, kvmLevelLine } from "./irq-line.js";
import type { GuestMemory } from "../../memory/guest-memory.js";
import type { DeviceThreadData, DeviceThreadEvent, DeviceThreadRequest } from "./protocol.js";
import { restoreDevices, restoreUserDevices, takeSnapshot } from "./snapshot.js";
import { serialSink } from "../serial-sink.js";
import { VmFds } from "./vm-fds.js";

/** What the VM owns on the device thread, for the requests that reach it. */
interface Owned {
  legacy: LegacyDevices;
  virtio: readonly AttachedVirtioDevice[];
  user: readonly AttachedUserDevice[];
  mmds: MmdsService | undefined;
  vm: Vm;
  mem: GuestMemory;
}

export class HostedVm {
  private readonly log: Logger;
  private readonly fds: VmFds;
  private virtio: AttachedVirtioDevice[] = [];
  private closed = false;
  /** The VM's vCPUs' mailboxes (to release a vCPU waiting on a handed-over exit when the VM closes). */
  private vcpuControls: VcpuControl[] = [];

  /**
   * Opens the VM's devices and puts its fds on `loop`; throws (having released what it opened) if one fails to open.
   * `onClosed`: the VM left the thread (stopped or failed), called once.
   */
  constructor(
    private readonly data: DeviceThreadData,
    loop: EventLoop,
    loaded: { userDevices: readonly LoadedUserDevice[]; userVirtio: ReadonlyMap<string, UserVirtioDeviceFactory> },
    private readonly onClosed: () => void,
  ) {
    this.log = createLogger({ ...data.log, origin: "devices" });
    this.fds = new VmFds(loop, (e) => this.fail(e));
    // Everything opened for the VM is released if a later device fails to open: a failed InstanceStart must leave no
    // image file, tap or epoll registration behind.
    try {
      this.open(loaded.userDevices, loaded.userVirtio);
    } catch (e) {
      this.release();
      throw e;
    }
  }

  private emit(e: DeviceThreadEvent): void {
    if (!this.closed) this.data.port.postMessage(e);
  }

  private open(userDevices: readonly LoadedUserDevice[], userVirtio: ReadonlyMap<string, UserVirtioDeviceFactory>): void {
    const { data, log, fds } = this;
    const vm = new Vm(data.vmFd, 0);
    const pio = new Bus("pio");
    const mmio = new Bus("mmio");
    const legacy = attachLegacyDevices(pio, vm, data.legacyStates, {
      serialOutput: serialSink(data.serialOutputFd, log),
      onReset: () => this.emit({ kind: "guest-reset" }),
    });
    const mem = guestMemoryOver(data.memory);
    if (data.trackDirtyPages) mem.trackDirtyPages(data.dirtyPages);
    const mmds = data.mmds && new MmdsService({ version: data.mmds.version, imdsCompat: data.mmds.imdsCompat, ipv4Address: data.mmds.ipv4Address, data: data.mmds.data });
    this.virtio = attachVirtioDevices(data.virtio, mmio, fds, mem, log, {
      userFactories: userVirtio, mmds: mmds && { service: mmds, interfaces: data.mmds!.networkInterfaces },
    });
    if (data.restoreDevices) restoreDevices(data.restoreDevices, legacy, this.virtio);
    const user = attachUserDevices(userDevices, {
      pio, mmio, memory: mem, log, irqLine: (gsi, shared) => (shared ? kvmLevelLine(vm, gsi) : kvmIrqLine(vm, gsi)), takenGsis: new Set([...LEGACY_GSIS, ...data.virtio.map((v) => v.gsi)]),
    });
    if (data.restoreDevices) restoreUserDevices(data.restoreDevices.user, user);

    const vcpus = data.vcpus.map((v) => ({ id: v.id, control: new VcpuControl(v.control), run: new KvmRunView(v.runAddr, v.mmapSize) }));
    this.vcpuControls = vcpus.map((v) => v.control);
    const exits = new ExitServer(vcpus, pio, mmio, log);
    // Exits a vCPU hands over (vcpu/registers.ts says which): rare, so served when woken, with no polling.
    fds.add(data.exitEventFd, () => {
      drainEventFd(data.exitEventFd);
      exits.serveAll();
    });
    const owned: Owned = { legacy, virtio: this.virtio, user, mmds, vm, mem };
    fds.add(data.controlEventFd, () => {
      drainEventFd(data.controlEventFd);
      for (let m = receiveMessageOnPort(data.port); m && !this.closed; m = receiveMessageOnPort(data.port)) {
        this.serveRequest(m.message as DeviceThreadRequest, owned);
      }
    });
  }

  ready(): void {
    this.emit({ kind: "ready" });
  }

  /** The controller's "stop": the VM leaves the thread; "stopped" is its last event. */
  stop(): void {
    if (this.closed) return;
    this.emit({ kind: "stopped" });
    this.close();
  }

  /** One of the VM's handlers threw: this VM ends, the thread and its other VMs run on. */
  private fail(e: unknown): void {
    if (this.closed) return;
    this.emit({ kind: "failed", error: this.oneLine(e) });
    this.close();
  }

  /** Takes the VM off the loop and closes its devices (the fds the controller made are the controller's to close). */
  close(): void {
    if (this.closed) return;
    this.release();
    this.closed = true;
    this.data.port.close();
    this.onClosed();
  }

  private release(): void {
    this.fds.close();
    // A vCPU that handed an exit over and waits for it is let go (its access unserved): it must not wait out its
    // controller's stop timeout for a thread that will never serve it now.
    for (const control of this.vcpuControls) if (control.mailbox === ExitMailbox.Pending) control.completeExit();
    for (const v of this.virtio) {
      try {
        closeAttached(v);
      } catch (e) {
        this.log("Error", `closing ${v.spec.backend.kind} ${v.spec.backend.id}: ${(e as Error).message}`);
      }
    }
    this.virtio = [];
  }

  /** One request from the controller; those with an id are always answered, with the error's one-line text if any. */
  private serveRequest(req: DeviceThreadRequest, { legacy, virtio, user, mmds, vm, mem }: Owned): void {
    const answer = (id: number, work: () => void) => {
      try {
        work();
        this.emit({ kind: "done", id });
      } catch (e) {
        this.emit({ kind: "done", id, error: this.oneLine(e) });
      }
    };
    switch (req.kind) {
      case "serial-input":
        legacy.serial.enqueueInput(req.bytes);
        break;
      case "ctrl-alt-del":
        // A guest that does not read its keyboard fills the i8042 buffer: that is the caller's error to see, never
        // the end of the VM.
        answer(req.id, () => legacy.i8042.sendCtrlAltDel());
        break;
      case "metrics":
        this.emit({ kind: "metrics", id: req.id, metrics: { ...deviceMetrics(legacy, virtio), ...userDeviceMetrics(user), ...(mmds && { mmds: { ...mmds.metrics } }) } });
        break;
      case "mmds-data":
        // Without an mmds-config no interface reaches MMDS, and there is nothing to update.
        answer(req.id, () => mmds?.metadata.setDataText(req.data));
        break;
      case "swap-drive":
        answer(req.id, () => swapDriveImage(virtio, req.driveId, req.path));
        break;
      case "update-rate-limiters":
        answer(req.id, () => updateRateLimiters(virtio, req.update));
        break;
      case "snapshot":
        try {
          this.emit({ kind: "snapshot", id: req.id, parts: takeSnapshot(req, vm, mem, { legacy, virtio, user }) });
        } catch (e) {
          this.emit({ kind: "snapshot", id: req.id, error: this.oneLine(e) });
        }
        break;
      case "balloon":
        try {
          this.emit({ kind: "balloon", id: req.id, state: balloonRequest(virtio, req.op) });
        } catch (e) {
          this.emit({ kind: "balloon", id: req.id, error: this.oneLine(e) });
        }
        break;
      case "stop":
        this.stop();
        break;
    }
  }

  /** An error as one line for the controller (a fault_message, a CLI line); the stack goes to the log at Debug. */
  oneLine(e: unknown): string {
    return oneLine(e, this.log);
  }
}

export function oneLine(e: unknown, log?: Logger): string {
  if (e instanceof Error && e.stack) log?.("Debug", e.stack);
  return (e instanceof Error ? e.message : String(e)).replace(/\s*\n\s*/g, " ");
}

/** Device metrics by device, Firecracker-style names where it has one. */
function deviceMetrics(legacy: LegacyDevices, virtio: readonly AttachedVirtioDevice[]): Record<string, unknown> {
  const out: Record<string, unknown> = {
    uart: { ...legacy.serial.metrics },
    i8042: { ...legacy.i8042.metrics },
    // Guest-triggerable log lines dropped by their call site's rate limiter (Firecracker's logger metric). Counted
    // per thread: with several VMs on the device thread, this is their sum.
    logger: { rate_limited_log_count: logRateLimitMetrics.rateLimitedLogCount },
  };
  for (const v of virtio) {
    out[`${v.spec.backend.kind}_${v.spec.backend.id}`] = { ...(v.device as { metrics?: object }).metrics, transport: { ...v.transport.metrics } };
  }
  return out;
}

function userDeviceMetrics(user: readonly AttachedUserDevice[]): Record<string, unknown> {
  return Object.fromEntries(user.map((u) => [`user_${u.spec.name}`, { ...u.metrics }]));
}
