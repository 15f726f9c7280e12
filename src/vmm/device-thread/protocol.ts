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
  | { kind: "vsock"; id: string; guestCid: number; udsPath: string }
  | { kind: "balloon"; id: string; amountMib: number; deflateOnOom: boolean; statsPollingIntervalS: number; freePageReporting: boolean; guestMemMib: number };

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
}

export type DeviceThreadRequest =
  | { kind: "serial-input"; bytes: Uint8Array }
  /** Answered with `done`; the error says why the keys could not be queued (the guest left no room). */
  | { kind: "ctrl-alt-del"; id: number }
  | { kind: "metrics"; id: number }
  /** PATCH /drives/{id}: serve drive `driveId` from the image at `path` from now on. */
  | { kind: "swap-drive"; id: number; driveId: string; path: string }
  /** PATCH /balloon, PATCH /balloon/statistics, GET /balloon/statistics: answered with `balloon`. */
  | { kind: "balloon"; id: number; op: BalloonOp }
  | { kind: "stop" };

export type DeviceThreadEvent =
  | { kind: "ready" }
  /** The guest pulsed the reset line (i8042): a reboot, which ends the VMM as in Firecracker. */
  | { kind: "guest-reset" }
  | { kind: "metrics"; id: number; metrics: Record<string, unknown> }
  /** Answer to a `balloon` request: the device's state after it, or why it failed. */
  | { kind: "balloon"; id: number; state?: BalloonState; error?: string }
  /** Answer to a request that carries an id: error is absent on success. */
  | { kind: "done"; id: number; error?: string }
  | { kind: "failed"; error: string }
  | { kind: "stopped" };

export type BalloonOp =
  | { kind: "get" }
  | { kind: "set-target"; amountMib: number }
  | { kind: "set-stats-interval"; seconds: number }
  | { kind: "statistics" };

/** The balloon as the device thread sees it: its target, polling interval and (for `statistics`) the guest's figures. */
export interface BalloonState {
  amountMib: number;
  statsPollingIntervalS: number;
  statistics?: Record<string, number>;
}
