/**
 * The device thread: owns every device model and both buses, so device state has one owner and needs no
 * locks. It sleeps in epoll_wait on: the exit eventfd (a vCPU posted a PIO/MMIO exit), the control eventfd
 * (the controller posted a request), and later the virtio queue eventfds and host fds. The API/CLI thread
 * and the vCPU threads never run device code.
 */
import { parentPort, receiveMessageOnPort, workerData } from "node:worker_threads";
import { writeSync } from "node:fs";
import { Vm } from "../../kvm/vm.js";
import { KvmRunView } from "../../kvm/run.js";
import { Bus } from "../../devices/bus.js";
import { VcpuControl } from "../vcpu/control.js";
import { createLogger } from "../logger.js";
import { EventLoop } from "./event-loop.js";
import { drainEventFd } from "../../sys/eventfd.js";
import { ExitServer } from "./exit-server.js";
import { ExitDoorbell } from "../exit-doorbell.js";
import { attachLegacyDevices, type LegacyDevices } from "./legacy-devices.js";
import { attachVirtioDevices, swapDriveImage, type AttachedVirtioDevice } from "./virtio-devices.js";
import { guestMemoryOver } from "../../memory/host-mapping.js";
import type { DeviceThreadData, DeviceThreadEvent, DeviceThreadRequest } from "./protocol.js";
import { lockDownThread } from "../seccomp/thread-lockdown.js";

const data = workerData as DeviceThreadData;
const emit = (e: DeviceThreadEvent) => parentPort!.postMessage(e);
const log = createLogger({ ...data.log, origin: "devices" });

function main(): void {
  const loop = new EventLoop();
  let virtio: AttachedVirtioDevice[] = [];
  // Everything this thread opens is released however it ends, a device that fails to open included: a failed
  // InstanceStart must leave no epoll fd, image file or tap behind.
  try {
    const vm = new Vm(data.vmFd, 0);
    const pio = new Bus("pio");
    const mmio = new Bus("mmio");

    const legacy = attachLegacyDevices(pio, vm, {
      serialOutput: serialSink(data.serialOutputFd),
      onReset: () => emit({ kind: "guest-reset" }),
    });

    const mem = guestMemoryOver(data.memory);
    virtio = attachVirtioDevices(data.virtio, mmio, loop, mem, log);

    const vcpus = data.vcpus.map((v) => ({ id: v.id, control: new VcpuControl(v.control), run: new KvmRunView(v.runAddr, v.mmapSize) }));
    const exits = new ExitServer(vcpus, pio, mmio, log);
    const doorbell = new ExitDoorbell(data.exitEventFd, data.exitDoorbellPoll, data.exitDoorbell);
    loop.add(data.exitEventFd, () => {
      drainEventFd(data.exitEventFd);
      doorbell.serveWhileBusy(() => exits.serveAll());
    });

    loop.add(data.controlEventFd, () => {
      drainEventFd(data.controlEventFd);
      for (let m = receiveMessageOnPort(data.port); m; m = receiveMessageOnPort(data.port)) {
        serveRequest(m.message as DeviceThreadRequest, legacy, virtio, loop);
      }
    });

    // Every device is open: narrowed before the first guest request is served.
    lockDownThread("devices", "petasan-devices", data.seccomp);
    emit({ kind: "ready" });
    loop.run();
  } finally {
    for (const v of virtio) v.close();
    loop.close();
  }
}

/** One request from the controller; those with an id are always answered, with the error's one-line text if any. */
function serveRequest(req: DeviceThreadRequest, legacy: LegacyDevices, virtio: readonly AttachedVirtioDevice[], loop: EventLoop): void {
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
      emit({ kind: "metrics", id: req.id, metrics: deviceMetrics(legacy, virtio) });
      break;
    case "swap-drive":
      answer(req.id, () => swapDriveImage(virtio, req.driveId, req.path));
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
  const out: Record<string, unknown> = { uart: { ...legacy.serial.metrics }, i8042: { ...legacy.i8042.metrics } };
  for (const v of virtio) {
    out[`${v.spec.backend.kind}_${v.spec.backend.id}`] = { ...(v.device as { metrics?: object }).metrics, transport: { ...v.transport.metrics } };
  }
  return out;
}

/** Where the guest's COM1 bytes go; if that breaks (the reader went away), they are dropped after one log line. */
function serialSink(fd: number | null): (bytes: Uint8Array) => void {
  if (fd === null) return () => {};
  let broken = false;
  return (bytes) => {
    if (broken) return;
    try {
      writeAll(fd, bytes);
    } catch (e) {
      broken = true;
      log("Error", `serial output stopped: ${(e as Error).message}; further guest console output is dropped`);
    }
  };
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));

/**
 * Serial output is written synchronously: a slow reader slows the guest rather than losing bytes. The fd
 * may be non-blocking (a terminal shares O_NONBLOCK with the stdin Node reads), so EAGAIN waits a little.
 */
function writeAll(fd: number, bytes: Uint8Array): void {
  for (let off = 0; off < bytes.length; ) {
    try {
      off += writeSync(fd, bytes, off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e;
      Atomics.wait(sleepCell, 0, 0, 1);
    }
  }
}

try {
  main();
  emit({ kind: "stopped" });
} catch (e) {
  emit({ kind: "failed", error: oneLine(e) });
}
