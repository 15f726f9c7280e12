/**
 * The device thread: owns every device model and both buses. It runs the data path (virtio queues, disks, taps,
 * vsock sockets, timers, host input) and the requests of the controller; device registers are served on the vCPU
 * threads, over register files this thread shares with them (vcpu/registers.ts), except the few accesses a vCPU hands
 * over (DRIVER_OK, reset, config writes, the user's devices, unclaimed addresses). It sleeps in epoll_wait on: the exit
 * eventfd (a vCPU handed over an exit), the control eventfd (the controller posted a request), the virtio queue
 * eventfds and the devices' host fds and timers. The API/CLI thread never runs device code.
 */
import { parentPort, receiveMessageOnPort } from "node:worker_threads";
import { jobData } from "../job-data.js";
import { Vm } from "../../kvm/vm.js";
import { KvmRunView } from "../../kvm/run.js";
import { Bus } from "../../devices/bus.js";
import { VcpuControl } from "../vcpu/control.js";
import { createLogger } from "../logger.js";
import { EventLoop } from "./event-loop.js";
import { drainEventFd } from "../../sys/eventfd.js";
import { ExitServer } from "./exit-server.js";
import { attachLegacyDevices, type LegacyDevices } from "./legacy-devices.js";
import { attachVirtioDevices, balloonRequest, closeAttached, swapDriveImage, updateRateLimiters, type AttachedVirtioDevice } from "./virtio-devices.js";
import { MmdsService } from "../../devices/mmds/index.js";
import { guestMemoryOver } from "../../memory/host-mapping.js";
import { logRateLimitMetrics } from "../../devices/log-rate-limit.js";
import {
  attachUserDevices, loadUserDevices, loadUserVirtioDevices, type AttachedUserDevice, type LoadedUserDevice, type UserVirtioDeviceFactory,
} from "./user-devices.js";
import { kvmIrqLine, kvmLevelLine } from "./irq-line.js";
import { LEGACY_GSIS } from "./legacy-devices.js";
import type { GuestMemory } from "../../memory/guest-memory.js";
import type { DeviceThreadData, DeviceThreadEvent, DeviceThreadRequest } from "./protocol.js";
import { restoreDevices, restoreUserDevices, takeSnapshot } from "./snapshot.js";
import { lockDownThread } from "../seccomp/thread-lockdown.js";
import { serialSink } from "../serial-sink.js";
import { warmUpDeviceThread } from "./warm-up.js";

const data = await jobData<DeviceThreadData>(warmUpDeviceThread);
const emit = (e: DeviceThreadEvent) => parentPort!.postMessage(e);
const log = createLogger({ ...data.log, origin: "devices" });

function main(userDevices: readonly LoadedUserDevice[], userVirtio: ReadonlyMap<string, UserVirtioDeviceFactory>): void {
  const loop = new EventLoop();
  let virtio: AttachedVirtioDevice[] = [];
  let mmds: MmdsService | undefined;
  // Everything this thread opens is released however it ends, a device that fails to open included: a failed
  // InstanceStart must leave no epoll fd, image file or tap behind.
  try {
    const vm = new Vm(data.vmFd, 0);
    const pio = new Bus("pio");
    const mmio = new Bus("mmio");

    const legacy = attachLegacyDevices(pio, vm, data.legacyStates, {
      serialOutput: serialSink(data.serialOutputFd, log),
      onReset: () => emit({ kind: "guest-reset" }),
    });

    const mem = guestMemoryOver(data.memory);
    if (data.trackDirtyPages) mem.trackDirtyPages(data.dirtyPages);
    mmds = data.mmds && new MmdsService({ version: data.mmds.version, imdsCompat: data.mmds.imdsCompat, ipv4Address: data.mmds.ipv4Address, data: data.mmds.data });
    virtio = attachVirtioDevices(data.virtio, mmio, loop, mem, log, {
      userFactories: userVirtio, mmds: mmds && { service: mmds, interfaces: data.mmds!.networkInterfaces },
    });
    if (data.restoreDevices) restoreDevices(data.restoreDevices, legacy, virtio);
    const user = attachUserDevices(userDevices, {
      pio, mmio, memory: mem, log, irqLine: (gsi, shared) => (shared ? kvmLevelLine(vm, gsi) : kvmIrqLine(vm, gsi)), takenGsis: new Set([...LEGACY_GSIS, ...data.virtio.map((v) => v.gsi)]),
    });
    if (data.restoreDevices) restoreUserDevices(data.restoreDevices.user, user);

    const vcpus = data.vcpus.map((v) => ({ id: v.id, control: new VcpuControl(v.control), run: new KvmRunView(v.runAddr, v.mmapSize) }));
    const exits = new ExitServer(vcpus, pio, mmio, log);
    // Exits a vCPU hands over (vcpu/registers.ts says which): rare, so served when woken, with no polling.
    loop.add(data.exitEventFd, () => {
      drainEventFd(data.exitEventFd);
      exits.serveAll();
    });

    loop.add(data.controlEventFd, () => {
      drainEventFd(data.controlEventFd);
      for (let m = receiveMessageOnPort(data.port); m; m = receiveMessageOnPort(data.port)) {
        serveRequest(m.message as DeviceThreadRequest, { legacy, virtio, loop, user, mmds, vm, mem });
      }
    });

    // Every device is open: narrowed before the first guest request is served.
    lockDownThread("devices", "petasan-devices", data.seccomp);
    emit({ kind: "ready" });
    loop.run();
  } finally {
    for (const v of virtio) closeAttached(v);
    loop.close();
  }
}

/** One request from the controller; those with an id are always answered, with the error's one-line text if any. */
/** What the device thread owns, for the requests that reach it. */
interface Owned {
  legacy: LegacyDevices;
  virtio: readonly AttachedVirtioDevice[];
  loop: EventLoop;
  user: readonly AttachedUserDevice[];
  mmds: MmdsService | undefined;
  vm: Vm;
  mem: GuestMemory;
}

function serveRequest(req: DeviceThreadRequest, { legacy, virtio, loop, user, mmds, vm, mem }: Owned): void {
  const answer = (id: number, work: () => void) => {
    try {
      work();
      emit({ kind: "done", id });
    } catch (e) {
      emit({ kind: "done", id, error: oneLine(e) });
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
      emit({ kind: "metrics", id: req.id, metrics: { ...deviceMetrics(legacy, virtio), ...userDeviceMetrics(user), ...(mmds && { mmds: { ...mmds.metrics } }) } });
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
        emit({ kind: "snapshot", id: req.id, parts: takeSnapshot(req, vm, mem, { legacy, virtio, user }) });
      } catch (e) {
        emit({ kind: "snapshot", id: req.id, error: oneLine(e) });
      }
      break;
    case "balloon":
      try {
        emit({ kind: "balloon", id: req.id, state: balloonRequest(virtio, req.op) });
      } catch (e) {
        emit({ kind: "balloon", id: req.id, error: oneLine(e) });
      }
      break;
    case "stop":
      loop.stop();
      break;
  }
}

/** An error as one line for the controller (a fault_message, a CLI line); the stack goes to the log at Debug. */
function oneLine(e: unknown): string {
  if (e instanceof Error && e.stack) log("Debug", e.stack);
  return (e instanceof Error ? e.message : String(e)).replace(/\s*\n\s*/g, " ");
}

/** Device metrics by device, Firecracker-style names where it has one. */
function deviceMetrics(legacy: LegacyDevices, virtio: readonly AttachedVirtioDevice[]): Record<string, unknown> {
  const out: Record<string, unknown> = {
    uart: { ...legacy.serial.metrics },
    i8042: { ...legacy.i8042.metrics },
    // Guest-triggerable log lines dropped by their call site's rate limiter (Firecracker's logger metric).
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

try {
  main(await loadUserDevices(data.userDevices), await loadUserVirtioDevices(data.virtio));
  emit({ kind: "stopped" });
} catch (e) {
  emit({ kind: "failed", error: oneLine(e) });
}
