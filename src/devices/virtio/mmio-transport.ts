/**
 * virtio over MMIO, version 2 (virtio 1.2 §4.2.2 "MMIO Device Register Layout"): the register
 * file the guest driver programs, the device status state machine (§2.1, §3.1.1), and the
 * queue-notify / interrupt paths between the guest and a VirtioDevice.
 */
import { LogRateLimiter } from "../log-rate-limit.js";
import type { BusDevice } from "../bus.js";
import type { InterruptLine } from "../interrupt.js";
import type { GuestMemory } from "../../memory/guest-memory.js";
import { silentLogger, VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1, type Logger, type VirtioDevice } from "./device.js";
import { Queue } from "./queue/queue.js";
import { StateReader, DeviceStateError, type SavedState } from "../saved-state.js";
import { FIRST_FIELD_WORD, SharedCounters, SharedState, sharedFields } from "../shared-state.js";

/** Size of one device's register window: Linux's virtio_mmio.device=4K@..., Firecracker's MMIO_LEN. */
export const MMIO_DEVICE_WINDOW = 0x1000;

/** Register offsets, virtio 1.2 §4.2.2. */
export const VIRTIO_MMIO_QUEUE_NOTIFY = 0x050;
const REG_MAGIC_VALUE = 0x000;
const REG_VERSION = 0x004;
const REG_DEVICE_ID = 0x008;
const REG_VENDOR_ID = 0x00c;
const REG_DEVICE_FEATURES = 0x010;
const REG_DEVICE_FEATURES_SEL = 0x014;
const REG_DRIVER_FEATURES = 0x020;
const REG_DRIVER_FEATURES_SEL = 0x024;
const REG_QUEUE_SEL = 0x030;
const REG_QUEUE_NUM_MAX = 0x034;
const REG_QUEUE_NUM = 0x038;
const REG_QUEUE_READY = 0x044;
const REG_INTERRUPT_STATUS = 0x060;
const REG_INTERRUPT_ACK = 0x064;
const REG_STATUS = 0x070;
const REG_QUEUE_DESC_LOW = 0x080;
const REG_QUEUE_DESC_HIGH = 0x084;
const REG_QUEUE_DRIVER_LOW = 0x090;
const REG_QUEUE_DRIVER_HIGH = 0x094;
const REG_QUEUE_DEVICE_LOW = 0x0a0;
const REG_QUEUE_DEVICE_HIGH = 0x0a4;
const REG_CONFIG_GENERATION = 0x0fc;
const CONFIG_SPACE = 0x100;
/** Config space bytes a snapshot keeps and compares (every petasan device's config fits). */
const SAVED_CONFIG_BYTES = 64;

/** "virt" in little-endian ASCII (virtio 1.2 §4.2.2). */
const MAGIC_VALUE = 0x74726976;
/** Non-legacy virtio-mmio (virtio 1.2 §4.2.2: Version 0x2). */
const MMIO_VERSION = 2;
/** No PCI-style vendor to report; Firecracker reports 0 as well. */
const VENDOR_ID = 0;

/** Device status bits, virtio 1.2 §2.1. */
export const STATUS_ACKNOWLEDGE = 1;
export const STATUS_DRIVER = 2;
export const STATUS_DRIVER_OK = 4;
export const STATUS_FEATURES_OK = 8;
export const STATUS_DEVICE_NEEDS_RESET = 0x40;
export const STATUS_FAILED = 0x80;

/** InterruptStatus bits, virtio 1.2 §4.2.2: used buffer notification, configuration change. */
export const INTERRUPT_USED_BUFFER = 1;
export const INTERRUPT_CONFIG_CHANGE = 2;

/** The kernel command line entry that makes Linux probe a device here (drivers/virtio/virtio_mmio.c). */
export function virtioMmioCmdlineEntry(base: number, irq: number): string {
  return `virtio_mmio.device=4K@0x${base.toString(16)}:${irq}`;
}

/** What the driver programmed for one queue before DRIVER_OK (a view of the queue's shared words). */
interface QueueRegisters {
  size: number;
  ready: boolean;
  desc: [low: number, high: number];
  driver: [low: number, high: number];
  device: [low: number, high: number];
}

/** Queues a transport's shared state has room for: every petasan device and a user's (at most 8) fit. */
export const MAX_QUEUES = 16;
/** Device config space: from CONFIG_SPACE to the end of the device's window (virtio 1.2 §4.2.2). */
const CONFIG_SPACE_BYTES = MMIO_DEVICE_WINDOW - CONFIG_SPACE;
/** Words per queue: size, ready, desc low/high, driver low/high, device low/high, QueueNumMax. */
const QUEUE_WORDS = 9;
const Q_SIZE = 0;
const Q_READY = 1;
const Q_DESC = 2;
const Q_DRIVER = 4;
const Q_DEVICE = 6;
const Q_MAX = 8;

/**
 * Whether a register write must be served where the device runs, the device thread, rather than on the vCPU thread
 * that exited: it starts or stops the data path (Status: DRIVER_OK activates the queues, 0 resets the device), feeds
 * it (a QueueNotify that did not match an ioeventfd) or goes to the device model itself (config space). Every other
 * access, reads included, is served on the vCPU thread from the shared registers.
 */
export function mmioWriteNeedsDevice(offset: number, data: Uint8Array): boolean {
  if (offset >= CONFIG_SPACE || offset === VIRTIO_MMIO_QUEUE_NOTIFY) return true;
  if (offset !== REG_STATUS || data.length !== 4) return false;
  const value = u32le(data);
  return value === 0 || (value & STATUS_DRIVER_OK) !== 0;
}

export interface TransportMetrics {
  notifies: number;
  interrupts: number;
  /** Times the device was failed with DEVICE_NEEDS_RESET. */
  deviceFailures: number;
  /** Register accesses the spec does not allow (wrong width, wrong state, bad value). */
  invalidAccesses: number;
}

export interface MmioTransportOptions {
  mem: GuestMemory;
  interrupt: InterruptLine;
  logger?: Logger;
  /** Name for log lines, e.g. "virtio-blk rootfs". */
  name?: string;
  /**
   * The register file, shared with the threads that serve register accesses (MmioTransport.newState()); the
   * transport that owns the device fills in what the device offers. Its own when absent.
   */
  state?: SharedArrayBuffer;
}

const METRIC_NAMES = ["notifies", "interrupts", "deviceFailures", "invalidAccesses"] as const;

export class MmioTransport implements BusDevice {
  /** The register file, shared with every thread that serves its registers; its lock serializes them. */
  readonly shared: SharedState;
  private readonly counters: SharedCounters<(typeof METRIC_NAMES)[number]>;
  private readonly mem: GuestMemory;
  private readonly irq: InterruptLine;
  private readonly log: Logger;
  /** One log rate limiter per guest-triggerable call site (log-rate-limit.ts). */
  private readonly failedLog = new LogRateLimiter();
  private readonly featuresLog = new LogRateLimiter();
  private readonly version1Log = new LogRateLimiter();
  private readonly deviceFailureLog = new LogRateLimiter();
  private readonly invalidLog = new LogRateLimiter();
  private readonly name: string;
  declare private status: number;
  declare private deviceFeaturesSel: number;
  declare private driverFeaturesSel: number;
  declare private ackedLow: number;
  declare private ackedHigh: number;
  declare private queueSel: number;
  declare private active: boolean;
  /** Changes whenever the device's config space does, so the driver can read it consistently (§4.2.2). */
  declare private configGeneration: number;
  private queues: QueueRegisters[];
  /** The queues handed to the device at activation (their ring positions go into a snapshot); the owner's only. */
  private activeQueues: Queue[] = [];
  /** The config space as the driver reads it, kept by the owner whenever the device's changes. */
  private readonly configMirror: Uint8Array;

  /** A blank register file, to hand to the transport that owns the device and to the threads that serve its registers. */
  static newState(): SharedArrayBuffer {
    return SharedState.allocate(STATE_WORDS, CONFIG_SPACE_BYTES);
  }

  /**
   * `device`: the device model, on the thread that owns it; elsewhere (a vCPU thread serving registers) a
   * SharedDeviceInfo over the same state, and then writes for which mmioWriteNeedsDevice() is true must not come here.
   */
  constructor(readonly device: VirtioDevice, options: MmioTransportOptions) {
    this.shared = new SharedState(options.state ?? MmioTransport.newState(), STATE_WORDS);
    this.counters = new SharedCounters(this.shared, COUNTER_WORD, METRIC_NAMES);
    this.configMirror = this.shared.bytes.subarray(0, CONFIG_SPACE_BYTES);
    this.mem = options.mem;
    this.irq = options.interrupt;
    this.log = options.logger ?? silentLogger;
    this.name = options.name ?? `virtio device ${device.deviceType}`;
    this.queues = queueViews(this.shared, device.queueMaxSizes.length);
    if (!(device instanceof SharedDeviceInfo)) this.describeDevice();
  }

  /** The owner writes what the device offers into the shared state, for the threads that serve registers. */
  private describeDevice(): void {
    const d = this.device;
    if (d.queueMaxSizes.length > MAX_QUEUES) throw new Error(`${this.name}: ${d.queueMaxSizes.length} queues, at most ${MAX_QUEUES} are supported`);
    const w = this.shared.words;
    w[INFO_WORD] = d.deviceType;
    w[INFO_WORD + 1] = Number(d.features & 0xffff_ffffn);
    w[INFO_WORD + 2] = Number((d.features >> 32n) & 0xffff_ffffn);
    w[INFO_WORD + 3] = d.queueMaxSizes.length;
    d.queueMaxSizes.forEach((max, i) => { w[QUEUE_WORD + i * QUEUE_WORDS + Q_MAX] = max; });
    this.mirrorConfig();
  }

  /** Copies the device's config space into the shared state (the owner, whenever it may have changed). */
  private mirrorConfig(): void {
    this.device.readConfig(0, this.configMirror);
  }

  /** Counters, as a fresh object (every thread's accesses counted). */
  get metrics(): TransportMetrics {
    return this.counters.read();
  }

  private get ackedFeatures(): bigint {
    return (BigInt(this.ackedHigh >>> 0) << 32n) | BigInt(this.ackedLow >>> 0);
  }

  private set ackedFeatures(v: bigint) {
    this.ackedLow = Number(v & 0xffff_ffffn);
    this.ackedHigh = Number((v >> 32n) & 0xffff_ffffn);
  }

  private get interruptStatus(): number {
    return Atomics.load(this.shared.words, INTERRUPT_STATUS_WORD);
  }

  private set interruptStatus(v: number) {
    Atomics.store(this.shared.words, INTERRUPT_STATUS_WORD, v);
  }

  read(offset: number, data: Uint8Array): void {
    data.fill(0);
    this.shared.lock();
    try {
      if (offset >= CONFIG_SPACE) {
        // From the mirror, which the owner keeps equal to the device's config space.
        const at = offset - CONFIG_SPACE;
        if (at < CONFIG_SPACE_BYTES) data.set(this.configMirror.subarray(at, at + data.length));
        return;
      }
      // Registers below the config space are 32-bit, aligned access only (virtio 1.2 §4.2.2.2).
      if (data.length !== 4 || offset % 4 !== 0) return this.invalid(`${data.length}-byte read at register 0x${offset.toString(16)}`);
      const value = this.readRegister(offset);
      data[0] = value;
      data[1] = value >>> 8;
      data[2] = value >>> 16;
      data[3] = value >>> 24;
    } finally {
      this.shared.unlock();
    }
  }

  write(offset: number, data: Uint8Array): void {
    this.shared.lock();
    try {
      if (offset >= CONFIG_SPACE) {
        if (this.status & STATUS_FAILED) return this.invalid("config write after FAILED");
        this.device.writeConfig(offset - CONFIG_SPACE, data);
        this.mirrorConfig();
        return;
      }
      if (data.length !== 4 || offset % 4 !== 0) return this.invalid(`${data.length}-byte write at register 0x${offset.toString(16)}`);
      this.writeRegister(offset, u32le(data));
    } finally {
      this.shared.unlock();
    }
  }

  /**
   * The driver kicked queue `queueIndex`: from the queue's ioeventfd (event loop) or from a
   * QueueNotify write that arrived as an MMIO exit.
   */
  notify(queueIndex: number): void {
    this.counters.bump("notifies");
    if (!this.running()) return;
    if (!Number.isInteger(queueIndex) || queueIndex < 0 || queueIndex >= this.queues.length) {
      return this.invalid(`notify for queue ${queueIndex}, device has ${this.queues.length}`);
    }
    this.guarded(() => this.device.processQueue(queueIndex));
  }

  /** The device's host fd is readable (event loop, EPOLLIN on `hostFd`). */
  hostReady(): void {
    if (this.running()) this.guarded(() => this.device.onHostReady?.());
  }

  /**
   * Runs the device's handler for one of the host fds it watches (HostIo), guarded as queue work is; dropped while
   * the device is not running (the device re-checks its fds when it is activated).
   */
  hostEvent(work: () => void): void {
    if (this.running()) this.guarded(work);
  }

  /** The device's DeviceTimer fired (event loop): it resumes what it put off. */
  timerFired(): void {
    if (this.running()) this.guarded(() => this.device.onTimer?.());
  }

  /** The device's host fd, if it has one: poll it for EPOLLIN while hostPollWanted() is true. */
  get hostFd(): number | undefined {
    return this.device.hostFd;
  }

  /** Re-check after every notify()/hostReady() call and arm or disarm EPOLLIN on `hostFd` to match. */
  hostPollWanted(): boolean {
    return this.running() && (this.device.hostPollWanted?.() ?? false);
  }

  /** Current device status register (for tests and diagnostics). */
  get deviceStatus(): number {
    return Atomics.load(this.shared.words, STATUS_WORD);
  }

  /** Read by the data path without the lock: each word is read atomically, and a stale answer only delays work a kick repeats. */
  private running(): boolean {
    const w = this.shared.words;
    return Atomics.load(w, ACTIVE_WORD) !== 0 && (Atomics.load(w, STATUS_WORD) & (STATUS_DEVICE_NEEDS_RESET | STATUS_FAILED)) === 0;
  }

  private readRegister(offset: number): number {
    const q = this.queues[this.queueSel];
    switch (offset) {
      case REG_MAGIC_VALUE: return MAGIC_VALUE;
      case REG_VERSION: return MMIO_VERSION;
      case REG_DEVICE_ID: return this.device.deviceType;
      case REG_VENDOR_ID: return VENDOR_ID;
      case REG_DEVICE_FEATURES:
        return this.deviceFeaturesSel > 1 ? 0 : Number((this.device.features >> BigInt(32 * this.deviceFeaturesSel)) & 0xffff_ffffn);
      case REG_QUEUE_NUM_MAX: return q ? this.device.queueMaxSizes[this.queueSel] : 0;
      case REG_QUEUE_NUM: return q ? q.size : 0;
      case REG_QUEUE_READY: return q?.ready ? 1 : 0;
      case REG_INTERRUPT_STATUS: return this.interruptStatus;
      case REG_STATUS: return this.status;
      // Config space never changes under the driver, so one generation is enough (virtio 1.2 §4.2.2).
      case REG_CONFIG_GENERATION: return this.configGeneration;
      default:
        this.invalid(`read of write-only or unknown register 0x${offset.toString(16)}`);
        return 0;
    }
  }

  private writeRegister(offset: number, value: number): void {
    switch (offset) {
      case REG_DEVICE_FEATURES_SEL: this.deviceFeaturesSel = value; return;
      case REG_DRIVER_FEATURES_SEL: this.driverFeaturesSel = value; return;
      case REG_DRIVER_FEATURES: return this.writeDriverFeatures(value);
      case REG_QUEUE_SEL: this.queueSel = value; return;
      case REG_QUEUE_NUM: return this.writeQueue("QueueNum", (q) => { q.size = value; });
      case REG_QUEUE_READY: return this.writeQueue("QueueReady", (q) => { q.ready = value === 1; }, true);
      case REG_QUEUE_DESC_LOW: return this.writeQueue("QueueDescLow", (q) => { q.desc = [value, q.desc[1]]; });
      case REG_QUEUE_DESC_HIGH: return this.writeQueue("QueueDescHigh", (q) => { q.desc = [q.desc[0], value]; });
      case REG_QUEUE_DRIVER_LOW: return this.writeQueue("QueueDriverLow", (q) => { q.driver = [value, q.driver[1]]; });
      case REG_QUEUE_DRIVER_HIGH: return this.writeQueue("QueueDriverHigh", (q) => { q.driver = [q.driver[0], value]; });
      case REG_QUEUE_DEVICE_LOW: return this.writeQueue("QueueDeviceLow", (q) => { q.device = [value, q.device[1]]; });
      case REG_QUEUE_DEVICE_HIGH: return this.writeQueue("QueueDeviceHigh", (q) => { q.device = [q.device[0], value]; });
      case VIRTIO_MMIO_QUEUE_NOTIFY: return this.notify(value);
      case REG_INTERRUPT_ACK: Atomics.and(this.shared.words, INTERRUPT_STATUS_WORD, ~value); return;
      case REG_STATUS: return this.writeStatus(value);
      default:
        return this.invalid(`write of read-only or unknown register 0x${offset.toString(16)}`);
    }
  }

  /** DriverFeatures is writable while the driver negotiates: DRIVER set, FEATURES_OK not yet (virtio 1.2 §3.1.1). */
  private writeDriverFeatures(value: number): void {
    if ((this.status & (STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_FAILED)) !== STATUS_DRIVER) return this.invalid("DriverFeatures write outside feature negotiation");
    if (this.driverFeaturesSel > 1) return this.invalid(`DriverFeaturesSel ${this.driverFeaturesSel} has no features`);
    const shift = BigInt(32 * this.driverFeaturesSel);
    this.ackedFeatures = (this.ackedFeatures & ~(0xffff_ffffn << shift)) | (BigInt(value >>> 0) << shift);
  }

  /**
   * Queue registers may change only after FEATURES_OK and before DRIVER_OK, and (apart from
   * QueueReady itself) only while the queue is not ready (virtio 1.2 §4.2.2.1, §4.2.3.2).
   */
  private writeQueue(register: string, set: (q: QueueRegisters) => void, evenIfReady = false): void {
    const q = this.queues[this.queueSel];
    const phase = this.status & (STATUS_FEATURES_OK | STATUS_DRIVER_OK | STATUS_FAILED);
    if (!q) return this.invalid(`${register} write for queue ${this.queueSel}, device has ${this.queues.length}`);
    if (phase !== STATUS_FEATURES_OK) return this.invalid(`${register} write in device status 0x${this.status.toString(16)}`);
    if (q.ready && !evenIfReady) return this.invalid(`${register} write while queue ${this.queueSel} is ready`);
    set(q);
  }

  /**
   * Status moves one step at a time: ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK (virtio 1.2
   * §3.1.1); 0 resets; FAILED sticks until reset. A DEVICE_NEEDS_RESET bit echoed back by the
   * driver is ignored.
   */
  private writeStatus(value: number): void {
    if (value === 0) return this.reset();
    // Bits are added atomically: the owner may set DEVICE_NEEDS_RESET from the data path, outside the lock.
    if (value & STATUS_FAILED) {
      Atomics.or(this.shared.words, STATUS_WORD, STATUS_FAILED);
      this.failedLog.log(this.log, "warn", `${this.name}: driver set FAILED`);
      return;
    }
    const current = this.status & ~STATUS_DEVICE_NEEDS_RESET;
    const requested = value & ~STATUS_DEVICE_NEEDS_RESET;
    const added = requested & ~current;
    const legalStep =
      (requested & current) === current &&
      ((current === 0 && added === STATUS_ACKNOWLEDGE) ||
        (current === STATUS_ACKNOWLEDGE && added === STATUS_DRIVER) ||
        (current === (STATUS_ACKNOWLEDGE | STATUS_DRIVER) && added === STATUS_FEATURES_OK) ||
        (current === (STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK) && added === STATUS_DRIVER_OK));
    if (!legalStep) return this.invalid(`status write 0x${value.toString(16)} from 0x${this.status.toString(16)}`);
    if (added === STATUS_FEATURES_OK && !this.featuresAcceptable()) return;
    Atomics.or(this.shared.words, STATUS_WORD, added);
    if (added === STATUS_DRIVER_OK) this.activate();
  }

  /** FEATURES_OK only for a subset of the offered features that includes VIRTIO_F_VERSION_1 (virtio 1.2 §2.2.1, §6.1). */
  private featuresAcceptable(): boolean {
    const unoffered = this.ackedFeatures & ~this.device.features;
    if (unoffered !== 0n) {
      this.featuresLog.log(this.log, "warn", `${this.name}: driver accepted features 0x${unoffered.toString(16)} that were not offered; FEATURES_OK refused`);
      return false;
    }
    if ((this.ackedFeatures & VIRTIO_F_VERSION_1) === 0n) {
      this.version1Log.log(this.log, "warn", `${this.name}: driver did not accept VIRTIO_F_VERSION_1 (legacy drivers are not supported); FEATURES_OK refused`);
      return false;
    }
    return true;
  }

  private activate(): void {
    try {
      this.startDevice();
    } catch (err) {
      this.failDevice(`activation failed: ${errorMessage(err)}`);
    }
  }

  /** Builds the queues from the registers (at saved ring positions when restoring) and activates the device; throws. */
  private startDevice(positions?: readonly Parameters<Queue["restoreState"]>[0][]): void {
    const features = { indirect: (this.ackedFeatures & VIRTIO_F_INDIRECT_DESC) !== 0n, eventIdx: (this.ackedFeatures & VIRTIO_F_EVENT_IDX) !== 0n };
    // A device whose queues depend on features (the balloon's statsq, reporting_vq) says how many the driver sets up.
    const needed = this.device.queuesNeeded?.(this.ackedFeatures) ?? this.queues.length;
    const queues = this.queues.slice(0, needed).map((q, i) => {
      if (!q.ready) throw new Error(`queue ${i} is not ready`);
      const queue = new Queue(this.mem, { size: q.size, descTable: address(q.desc), availRing: address(q.driver), usedRing: address(q.device) }, features, this.device.queueMaxSizes[i]);
      if (positions) queue.restoreState(positions[i]);
      return queue;
    });
    this.device.activate({
      mem: this.mem,
      queues,
      ackedFeatures: this.ackedFeatures,
      interrupt: () => this.raise(INTERRUPT_USED_BUFFER),
    });
    this.activeQueues = queues;
    this.active = true;
  }

  /**
   * The register file, negotiated features and, for an active device, each queue's ring positions, as plain
   * data (snapshots). The device's own state is its config (rebuilt from the VM's configuration) and guest RAM.
   */
  saveState(): SavedState {
    return this.shared.locked(() => this.saveLocked());
  }

  private saveLocked(): SavedState {
    return {
      deviceType: this.device.deviceType, status: this.status, deviceFeaturesSel: this.deviceFeaturesSel, driverFeaturesSel: this.driverFeaturesSel,
      ackedFeatures: `0x${this.ackedFeatures.toString(16)}`, queueSel: this.queueSel, interruptStatus: this.interruptStatus,
      active: this.active, configGeneration: this.configGeneration,
      queues: this.queues.map((q) => ({ size: q.size, ready: q.ready, desc: [...q.desc], driver: [...q.driver], device: [...q.device] })),
      positions: this.active ? this.activeQueues.map((q) => q.saveState()) : null,
      deviceConfig: Buffer.from(this.deviceConfigBytes()).toString("hex"),
    };
  }

  /** The device's config space as the driver reads it (a drive's capacity, a NIC's MAC, ...). */
  private deviceConfigBytes(): Uint8Array {
    const bytes = new Uint8Array(SAVED_CONFIG_BYTES);
    this.device.readConfig(0, bytes);
    return bytes;
  }

  /**
   * Takes back saveState()'s data into a fresh transport (never activated) and, if the device was active,
   * activates it at the saved ring positions without a reset. Throws DeviceStateError on a bad field, before
   * anything changes, or on a device that does not match or cannot start.
   */
  restoreState(saved: unknown): void {
    return this.shared.locked(() => this.restoreLocked(saved));
  }

  private restoreLocked(saved: unknown): void {
    const r = new StateReader(saved, this.name);
    if (r.int("deviceType", 0, 0xffff_ffff) !== this.device.deviceType) throw new DeviceStateError(`${this.name}: the snapshot holds a different device type here`);
    const u32 = (n: string) => r.int(n, 0, 0xffff_ffff);
    const next = {
      status: r.byte("status"), deviceFeaturesSel: u32("deviceFeaturesSel"), driverFeaturesSel: u32("driverFeaturesSel"),
      ackedFeatures: r.u64("ackedFeatures"), queueSel: u32("queueSel"), interruptStatus: r.int("interruptStatus", 0, 3),
      active: r.bool("active"), configGeneration: u32("configGeneration"),
    };
    const words = (v: unknown) => Array.isArray(v) && v.length === 2 && v.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffff_ffff);
    const queues = r.array("queues", this.device.queueMaxSizes.length).map((q, i) => {
      const qr = new StateReader(q, `${this.name} queue ${i}`);
      const regs = { size: qr.int("size", 0, 0xffff), ready: qr.bool("ready"), desc: qr.raw("desc"), driver: qr.raw("driver"), device: qr.raw("device") };
      if (!words(regs.desc) || !words(regs.driver) || !words(regs.device)) throw new DeviceStateError(`${this.name} queue ${i}: saved ring addresses must be [low, high] words`);
      return regs as QueueRegisters;
    });
    if (queues.length !== this.device.queueMaxSizes.length) throw new DeviceStateError(`${this.name}: the snapshot holds ${queues.length} queues, the device has ${this.device.queueMaxSizes.length}`);
    const positions = next.active ? r.array("positions", queues.length) : null;
    if (positions && positions.length !== queues.length) throw new DeviceStateError(`${this.name}: saved ring positions for ${positions.length} of ${queues.length} queues`);
    if (next.ackedFeatures & ~this.device.features) throw new DeviceStateError(`${this.name}: the snapshot's driver accepted features this device does not offer`);
    // The driver has read the config space and keeps what it read: it must not have changed under it.
    if (r.raw("deviceConfig") !== Buffer.from(this.deviceConfigBytes()).toString("hex")) {
      throw new DeviceStateError(`${this.name}: its configuration differs from the snapshot's (a drive image of another size? another MAC?)`);
    }
    Object.assign(this, next, { active: false });
    queues.forEach((q, i) => Object.assign(this.queues[i], q));
    if (positions) {
      try {
        this.startDevice(positions as Parameters<Queue["restoreState"]>[0][]);
      } catch (err) {
        throw new DeviceStateError(`${this.name}: cannot resume the device: ${errorMessage(err)}`);
      }
    }
  }

  private guarded(work: () => void): void {
    try {
      work();
    } catch (err) {
      this.failDevice(errorMessage(err));
    }
  }

  /** The device changed its config space (e.g. a block device's capacity after an image swap): tell the driver. */
  configChanged(): void {
    this.shared.lock();
    try {
      this.mirrorConfig();
      this.configGeneration = (this.configGeneration + 1) >>> 0;
    } finally {
      this.shared.unlock();
    }
    if (this.running()) this.raise(INTERRUPT_CONFIG_CHANGE);
  }

  /** Stops this device only and tells the driver (DEVICE_NEEDS_RESET + configuration change, virtio 1.2 §2.1.1). */
  private failDevice(reason: string): void {
    this.counters.bump("deviceFailures");
    this.deviceFailureLog.log(this.log, "error", `${this.name}: ${reason}; device needs reset`);
    Atomics.or(this.shared.words, STATUS_WORD, STATUS_DEVICE_NEEDS_RESET);
    this.raise(INTERRUPT_CONFIG_CHANGE);
  }

  /** Sets the InterruptStatus bit (an atomic OR: a vCPU thread may be acknowledging another bit) and signals the driver. */
  private raise(bit: number): void {
    Atomics.or(this.shared.words, INTERRUPT_STATUS_WORD, bit);
    this.counters.bump("interrupts");
    this.irq.trigger();
  }

  private reset(): void {
    if (this.active) this.device.reset();
    this.active = false;
    this.activeQueues = [];
    this.status = 0;
    this.deviceFeaturesSel = 0;
    this.driverFeaturesSel = 0;
    this.ackedFeatures = 0n;
    this.queueSel = 0;
    this.interruptStatus = 0;
    for (const q of this.queues) Object.assign(q, { size: 0, ready: false, desc: [0, 0], driver: [0, 0], device: [0, 0] });
  }

  private invalid(what: string): void {
    this.counters.bump("invalidAccesses");
    this.invalidLog.log(this.log, "warn", `${this.name}: ignored ${what}`);
  }
}

/**
 * The shared state's layout: the lock, the registers (sharedFields), InterruptStatus (atomic), what the device offers
 * (type, features, queue count; written by the owner), the counters, then each queue's words; the config mirror is in
 * the bytes after the words.
 */
const REGISTER_END = sharedFields(MmioTransport, {
  status: "int", deviceFeaturesSel: "uint", driverFeaturesSel: "uint", ackedLow: "uint", ackedHigh: "uint", queueSel: "uint",
  active: "bool", configGeneration: "uint",
}, FIRST_FIELD_WORD);
const STATUS_WORD = FIRST_FIELD_WORD;
const ACTIVE_WORD = FIRST_FIELD_WORD + 6;
const INTERRUPT_STATUS_WORD = REGISTER_END;
const INFO_WORD = INTERRUPT_STATUS_WORD + 1;
const COUNTER_WORD = INFO_WORD + 4;
const QUEUE_WORD = COUNTER_WORD + SharedCounters.words(METRIC_NAMES);
const STATE_WORDS = QUEUE_WORD + MAX_QUEUES * QUEUE_WORDS;

/** Queue `i`'s registers as an object whose fields are its shared words. */
function queueViews(shared: SharedState, count: number): QueueRegisters[] {
  const w = shared.words;
  return Array.from({ length: count }, (_, i) => {
    const at = QUEUE_WORD + i * QUEUE_WORDS;
    const pair = (o: number): [number, number] => [w[at + o] >>> 0, w[at + o + 1] >>> 0];
    const setPair = (o: number, [low, high]: [number, number]) => { w[at + o] = low; w[at + o + 1] = high; };
    return {
      get size() { return w[at + Q_SIZE]; },
      set size(v: number) { w[at + Q_SIZE] = v; },
      get ready() { return w[at + Q_READY] !== 0; },
      set ready(v: boolean) { w[at + Q_READY] = v ? 1 : 0; },
      get desc() { return pair(Q_DESC); },
      set desc(v: [number, number]) { setPair(Q_DESC, v); },
      get driver() { return pair(Q_DRIVER); },
      set driver(v: [number, number]) { setPair(Q_DRIVER, v); },
      get device() { return pair(Q_DEVICE); },
      set device(v: [number, number]) { setPair(Q_DEVICE, v); },
    };
  });
}

/**
 * What a thread that serves registers but does not own the device knows of it, read from the shared state the owner
 * filled in: type, features, queue sizes and config space. The device's work is not here: mmioWriteNeedsDevice()
 * writes go to the owner, so these methods are never reached; they throw if they are.
 */
export class SharedDeviceInfo implements VirtioDevice {
  readonly deviceType: number;
  readonly features: bigint;
  readonly queueMaxSizes: readonly number[];

  constructor(state: SharedArrayBuffer) {
    const w = new SharedState(state, STATE_WORDS).words;
    // Device ID 0 is reserved (virtio 1.2 §5): the owner has not described its device yet.
    if (w[INFO_WORD] === 0) throw new Error("the virtio device's register file is not described yet (its owner must attach it first)");
    this.deviceType = w[INFO_WORD];
    this.features = (BigInt(w[INFO_WORD + 2] >>> 0) << 32n) | BigInt(w[INFO_WORD + 1] >>> 0);
    this.queueMaxSizes = Array.from({ length: w[INFO_WORD + 3] }, (_, i) => w[QUEUE_WORD + i * QUEUE_WORDS + Q_MAX]);
  }

  readConfig(): void {
    throw new Error("config space is read from the shared mirror");
  }

  writeConfig(): void {
    throw new Error("config writes are served by the device's owner");
  }

  activate(): void {
    throw new Error("activation is served by the device's owner");
  }

  processQueue(): void {
    throw new Error("queues are served by the device's owner");
  }

  reset(): void {
    throw new Error("resets are served by the device's owner");
  }
}

/** A 4-byte little-endian register value (no DataView: this runs on every register exit). */
function u32le(data: Uint8Array): number {
  return (data[0] | (data[1] << 8) | (data[2] << 16) | (data[3] << 24)) >>> 0;
}

/** A 64-bit guest address from its register halves; beyond 2^53 it cannot be guest RAM, so -1 (rejected by Queue). */
function address([low, high]: [number, number]): number {
  return high >= 0x20_0000 ? -1 : high * 0x1_0000_0000 + low;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
