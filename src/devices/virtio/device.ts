/** The contract between the virtio-mmio transport and a virtio device model (block, net, rng). */
import type { GuestMemory } from "../../memory/guest-memory.js";
import type { Queue } from "./queue/queue.js";
import type { DescriptorChain } from "./queue/descriptor-chain.js";

/** Device IDs, virtio 1.2 §5 "Device Types". */
export const DEVICE_ID_NET = 1;
export const DEVICE_ID_BLOCK = 2;
export const DEVICE_ID_ENTROPY = 4;
export const DEVICE_ID_VSOCK = 19;

/** Reserved feature bits, virtio 1.2 §6. */
export const VIRTIO_F_INDIRECT_DESC = 1n << 28n;
export const VIRTIO_F_EVENT_IDX = 1n << 29n;
export const VIRTIO_F_VERSION_1 = 1n << 32n;

/** Ring features every petasan device offers. */
export const COMMON_FEATURES = VIRTIO_F_VERSION_1 | VIRTIO_F_INDIRECT_DESC | VIRTIO_F_EVENT_IDX;

/** Queue size every petasan device advertises (QueueNumMax); the Linux drivers use it as is. */
export const DEFAULT_QUEUE_SIZE = 256;

export type LogLevel = "error" | "warn" | "info" | "debug";
/** Injected logger; devices never print by themselves. */
export type Logger = (level: LogLevel, msg: string) => void;
export const silentLogger: Logger = () => {};

/** What a device gets when the driver sets DRIVER_OK. */
export interface ActivateContext {
  mem: GuestMemory;
  /** One per queue, in queue index order. */
  queues: Queue[];
  /** The feature bits the driver accepted (a subset of `features`). */
  ackedFeatures: bigint;
  /** Raises the used-buffer interrupt; call it when a queue's needsNotification() says so. */
  interrupt: () => void;
}

export interface VirtioDevice {
  /** virtio device ID (DEVICE_ID_*). */
  readonly deviceType: number;
  /** Offered feature bits (64-bit). */
  readonly features: bigint;
  /** QueueNumMax of each queue; the length is the number of queues. */
  readonly queueMaxSizes: readonly number[];
  /** Fills `data` from device config space at `offset` (bytes past the end read as 0). */
  readConfig(offset: number, data: Uint8Array): void;
  /** Takes a driver write to device config space. */
  writeConfig(offset: number, data: Uint8Array): void;
  /** Starts the device; throwing makes the transport set DEVICE_NEEDS_RESET. */
  activate(ctx: ActivateContext): void;
  /**
   * Handles a driver notification for queue `index`. Bad chains are the device's to complete
   * with an error; a VirtqError with `ringBroken` (or any other exception) may escape, and the
   * transport then fails the device with DEVICE_NEEDS_RESET.
   */
  processQueue(index: number): void;
  /**
   * How many queues (the first ones) the driver sets up with these features, when that depends on them (virtio 1.2
   * §5.5.2: the balloon's statsq exists only with VIRTIO_BALLOON_F_STATS_VQ); default: all of queueMaxSizes.
   */
  queuesNeeded?(ackedFeatures: bigint): number;
  /** Back to the state before activate(): drops queues and memory. */
  reset(): void;
  /** A host fd the event loop polls for EPOLLIN on the device's behalf (net: the tap). */
  readonly hostFd?: number;
  /** Called by the event loop when `hostFd` is readable. */
  onHostReady?(): void;
  /** Whether `hostFd` should be polled now (false while the guest has given no RX buffers). */
  hostPollWanted?(): boolean;
  /** Called when the device's DeviceTimer fires: resume work a rate limiter or a per-kick budget put off. */
  onTimer?(): void;
  /** For devices with many host fds: called once, before the guest runs, with the poller to register them on. */
  attachHost?(io: HostIo): void;
  /**
   * The device's own state for a snapshot, as JSON data: what neither its transport (registers, ring positions) nor
   * guest RAM holds, e.g. a balloon's target (Firecracker's Persist::save of each device). Called on the device thread
   * with the vCPUs paused, before guest RAM is written, so it may still write guest RAM (vsock posts its transport
   * reset event there, as Firecracker's prepare_save). A device without it holds no such state; a device written by
   * the user without it cannot be snapshotted.
   */
  saveState?(): unknown;
  /**
   * Takes back saveState()'s data into a freshly made device, before its transport reactivates it at the saved ring
   * positions (activate() then sees the restored state). Throws (a DeviceStateError naming the field) on data that
   * does not fit, before changing anything.
   */
  restoreState?(saved: unknown): void;
}

/** What became ready on a watched host fd. */
export interface HostEvents {
  readable: boolean;
  writable: boolean;
  /** The peer hung up or the fd has an error: a read or write says which. */
  hangup: boolean;
}

/**
 * Host fds a device watches itself (vsock: a listener and one socket per connection), polled by the thread that
 * runs the device. Edge-triggered: `onEvent` runs when readiness changes, so the device reads or writes until the fd
 * would block, or remembers that it is ready. Its calls are guarded like queue work: an exception fails the device.
 */
export interface HostIo {
  watch(fd: number, onEvent: (events: HostEvents) => void): void;
  /** Stops watching `fd`; call before closing it. */
  unwatch(fd: number): void;
}

/**
 * A one-shot timer a device arms to be called back (onTimer) later, on the thread that runs it: a timerfd
 * in the device thread's epoll, a fake in tests. Arming again replaces the previous deadline.
 */
export interface DeviceTimer {
  /** Fires once after `delayMs` (0: as soon as the event loop has served what is already pending). */
  arm(delayMs: number): void;
  disarm(): void;
}

/** A timer that never fires, for devices built without one (then nothing is ever put off). */
export const noTimer: DeviceTimer = { arm() {}, disarm() {} };

/** Copies config bytes at `offset` into `data`, zero-filling past the end of `config`. */
export function readConfigBytes(config: Uint8Array, offset: number, data: Uint8Array): void {
  data.fill(0);
  if (offset >= 0 && offset < config.length) data.set(config.subarray(offset, offset + data.length));
}

/**
 * Completes every available chain of `queue` with the used length `serve` returns, then interrupts the driver
 * once if it asked to be told (EVENT_IDX / NO_INTERRUPT): the request loop of devices that answer each chain at once.
 */
export function serveQueue(queue: Queue, interrupt: () => void, serve: (chain: DescriptorChain) => number): void {
  for (let chain = queue.pop(); chain; chain = queue.pop()) queue.addUsed(chain.head, serve(chain));
  if (queue.needsNotification()) interrupt();
}
