/** What crosses between the VMM controller (main thread) and the device thread. */
import type { MessagePort } from "node:worker_threads";
import type { MemoryRegionDescriptor } from "../../memory/guest-memory.js";
import type { LogSettings } from "../logger.js";

export interface DeviceThreadVcpu {
  id: number;
  runAddr: bigint;
  mmapSize: number;
  control: SharedArrayBuffer;
}

export type VirtioBackendSpec =
  | { kind: "block"; id: string; path: string; readOnly: boolean }
  | { kind: "net"; id: string; tap: string; mac?: string }
  | { kind: "rng"; id: string }
  | { kind: "vsock"; id: string; guestCid: number; udsPath: string };

/** A virtio device as placed by the device manager: its backend, MMIO window, GSI and eventfds. */
export interface VirtioDeviceSpec {
  backend: VirtioBackendSpec;
  base: number;
  gsi: number;
  /** irqfd registered with KVM for `gsi`. */
  irqFd: number;
  /** One ioeventfd per queue, registered at base + QueueNotify with the queue index as datamatch. */
  queueFds: number[];
}

export interface DeviceThreadData {
  vmFd: number;
  memory: MemoryRegionDescriptor[];
  vcpus: DeviceThreadVcpu[];
  /** eventfd vCPUs write when they post an exit. */
  exitEventFd: number;
  /** ExitDoorbell: the shared "device thread is awake" word, and whether threads poll at all. */
  exitDoorbell: SharedArrayBuffer;
  exitDoorbellPoll: boolean;
  /** eventfd the controller writes after posting on `port`, to wake epoll_wait. */
  controlEventFd: number;
  /** Requests from the controller, read synchronously (receiveMessageOnPort) when controlEventFd fires. */
  port: MessagePort;
  /** Where the guest's COM1 output goes, or null to discard it. */
  serialOutputFd: number | null;
  virtio: VirtioDeviceSpec[];
  log: LogSettings;
  /** The device thread's seccomp filter (compiled BPF), installed once its devices are open; absent: none. */
  seccomp?: Uint8Array;
}

export type DeviceThreadRequest =
  | { kind: "serial-input"; bytes: Uint8Array }
  /** Answered with `done`; the error says why the keys could not be queued (the guest left no room). */
  | { kind: "ctrl-alt-del"; id: number }
  | { kind: "metrics"; id: number }
  /** PATCH /drives/{id}: serve drive `driveId` from the image at `path` from now on. */
  | { kind: "swap-drive"; id: number; driveId: string; path: string }
  | { kind: "stop" };

export type DeviceThreadEvent =
  | { kind: "ready" }
  /** The guest pulsed the reset line (i8042): a reboot, which ends the VMM as in Firecracker. */
  | { kind: "guest-reset" }
  | { kind: "metrics"; id: number; metrics: Record<string, unknown> }
  /** Answer to a request that carries an id: error is absent on success. */
  | { kind: "done"; id: number; error?: string }
  | { kind: "failed"; error: string }
  | { kind: "stopped" };
