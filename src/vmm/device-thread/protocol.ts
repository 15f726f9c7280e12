/** What crosses between the VMM controller (main thread) and the device thread. */
import type { MessagePort } from "node:worker_threads";
import type { MemoryRegionDescriptor } from "../../memory/guest-memory.js";
import type { LogSettings } from "../logger.js";
import type { LegacyStates } from "../register-states.js";
import type { RateLimiterUpdate } from "../../config/rate-limiter.js";
import type { RateLimiterSettings } from "../../devices/rate-limiter.js";
import type { UserDeviceSpec } from "./user-devices.js";
import type { SavedDevices } from "../snapshot/state-codec.js";
import type { SnapshotParts, SnapshotRequest } from "./snapshot.js";

export interface DeviceThreadVcpu {
  id: number;
  runAddr: bigint;
  mmapSize: number;
  control: SharedArrayBuffer;
}

export type VirtioBackendSpec =
  | { kind: "block"; id: string; path: string; readOnly: boolean; rateLimiter?: RateLimiterSettings }
  | { kind: "net"; id: string; tap: string; mac?: string; rxRateLimiter?: RateLimiterSettings; txRateLimiter?: RateLimiterSettings }
  | { kind: "rng"; id: string; rateLimiter?: RateLimiterSettings }
  | { kind: "vsock"; id: string; guestCid: number; udsPath: string }
  /** A virtio device written by the user: its module (file: URL) makes the device; `queues` is its queue count. */
  | { kind: "user"; id: string; module: string; queues: number; options?: unknown }
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
  /** The transport's register file (MmioTransport.newState()), served by the vCPU threads too. */
  registers: SharedArrayBuffer;
}

/** MMDS for the guest (PUT /mmds/config), and the data store's contents at boot. */
export interface MmdsSpec {
  version: "V1" | "V2";
  imdsCompat: boolean;
  ipv4Address: string;
  /** Interfaces (iface_id) whose frames to the MMDS address are answered by MMDS. */
  networkInterfaces: string[];
  /** The data store as JSON text ("null" while empty). */
  data: string;
}

/**
 * One device thread serves every VM of a process that shares its seccomp choice (device-thread-host.ts): it starts
 * with this, then VMs are added and removed over `port`.
 */
export interface DeviceHostData {
  /** eventfd the controller writes after posting on `port`, to wake epoll_wait. */
  controlEventFd: number;
  /** Host requests (DeviceHostRequest), read synchronously when controlEventFd fires. */
  port: MessagePort;
  /** The thread's seccomp filter (compiled BPF), installed once the first VM's devices are open; absent: none. */
  seccomp?: Uint8Array;
}

export type DeviceHostRequest =
  /** Open this VM's devices; the VM's events (ready, failed, ...) then go out on `data.port`. */
  | { kind: "add-vm"; data: DeviceThreadData }
  /** No VM is left on the thread (the controller starts no more on it): end it. */
  | { kind: "exit" };

/** Posted on the worker's parentPort: the thread itself failed (not one VM's devices), so every VM on it ended. */
export type DeviceHostEvent = { kind: "host-failed"; error: string };

export interface DeviceThreadData {
  vmFd: number;
  memory: MemoryRegionDescriptor[];
  vcpus: DeviceThreadVcpu[];
  /** eventfd vCPUs write when they post an exit. */
  exitEventFd: number;
  /** eventfd the controller writes after posting on `port`, to wake epoll_wait. */
  controlEventFd: number;
  /**
   * Requests from the controller, read synchronously (receiveMessageOnPort) when controlEventFd fires; the VM's events
   * (DeviceThreadEvent) go back on it.
   */
  port: MessagePort;
  /** Where the guest's COM1 output goes, or null to discard it. */
  serialOutputFd: number | null;
  /** The PC devices' register files, served by the vCPU threads too. */
  legacyStates: LegacyStates;
  virtio: VirtioDeviceSpec[];
  /** Devices written by the user, loaded from their modules onto this thread. */
  userDevices: UserDeviceSpec[];
  mmds?: MmdsSpec;
  log: LogSettings;
  /** Record the pages devices write, for Diff snapshots (machine-config track_dirty_pages). */
  trackDirtyPages?: boolean;
  /** With trackDirtyPages: the record of the pages devices write, shared with the vCPU threads (one per region). */
  dirtyPages?: SharedArrayBuffer[];
  /** Restoring a snapshot: device states put back before the device thread reports ready. */
  restoreDevices?: SavedDevices;
  /**
   * The device thread's seccomp filter (compiled BPF); absent: none. VMs share a device thread only when their filters
   * are the same bytes (device-thread-host.ts); it is installed once, after the first VM's devices are open.
   */
  seccomp?: Uint8Array;
}

export type DeviceThreadRequest =
  | { kind: "serial-input"; bytes: Uint8Array }
  /** Answered with `done`; the error says why the keys could not be queued (the guest left no room). */
  | { kind: "ctrl-alt-del"; id: number }
  | { kind: "metrics"; id: number }
  /** PATCH /drives/{id}: serve drive `driveId` from the image at `path` from now on. */
  | { kind: "swap-drive"; id: number; driveId: string; path: string }
  /** PATCH /drives/{id} or /network-interfaces/{id} with rate limiters: apply them to the running device. */
  | { kind: "update-rate-limiters"; id: number; update: RateLimiterUpdate }
  /** PUT/PATCH /mmds after boot: the data store's new contents as JSON text. */
  | { kind: "mmds-data"; id: number; data: string }
  /** Device states, VM-wide KVM state and guest RAM (to the memory file), answered with `snapshot`. */
  | ({ kind: "snapshot"; id: number } & SnapshotRequest)
  /** PATCH /balloon, PATCH /balloon/statistics, GET /balloon/statistics: answered with `balloon`. */
  | { kind: "balloon"; id: number; op: BalloonOp }
  | { kind: "stop" };

/** What a VM's devices say to its controller, on the VM's own port (DeviceThreadData.port). */
export type DeviceThreadEvent =
  | { kind: "ready" }
  /** The guest pulsed the reset line (i8042): a reboot, which ends the VMM as in Firecracker. */
  | { kind: "guest-reset" }
  | { kind: "metrics"; id: number; metrics: Record<string, unknown> }
  /** Answer to a `balloon` request: the device's state after it, or why it failed. */
  | { kind: "balloon"; id: number; state?: BalloonState; error?: string }
  /** Answer to a request that carries an id: error is absent on success. */
  | { kind: "done"; id: number; error?: string }
  | { kind: "snapshot"; id: number; parts?: SnapshotParts; error?: string }
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
