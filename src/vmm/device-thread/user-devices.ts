/**
 * Devices written by petasan's user: an ES module whose default export makes a BusDevice, loaded onto the
 * device thread and put on the port-I/O or MMIO bus. The guest's accesses in its range reach its read/write on
 * this thread (a vCPU hands them over); it may raise an interrupt and read or write guest RAM (for DMA). A device
 * that keeps its state in shared memory (UserDeviceSpec.shared) is also made on every vCPU thread
 * (vcpu/registers.ts), which then serve its accesses themselves, under one lock, as petasan's own devices.
 *
 * A user device must not take the VM down: a module that does not load or export a factory, a factory that
 * throws, or a range that overlaps another device fails start() with one line naming the device; a read or
 * write that throws is answered (reads as all ones), logged once, and counted.
 */
import type { BusDevice, Bus } from "../../devices/bus.js";
import type { InterruptLine } from "../../devices/interrupt.js";
import type { GuestMemory } from "../../memory/guest-memory.js";
import type { Logger } from "../logger.js";
import type { VirtioDevice } from "../../devices/virtio/device.js";
import type { VirtioBackendSpec, VirtioDeviceSpec } from "./protocol.js";
import { SharedCounters, SharedState } from "../../devices/shared-state.js";

/** Where a user device sits and what its factory gets (crosses to the device thread by structured clone). */
export interface UserDeviceSpec {
  /** The module's URL (file:), whose default export is a UserDeviceFactory. */
  module: string;
  /** Which bus and range: port I/O (0..0xffff) or MMIO (in the 32-bit hole). */
  bus: "pio" | "mmio";
  base: number;
  length: number;
  /** The name in logs and errors. */
  name: string;
  /** An IOAPIC pin (GSI) for the device's interrupt, free of petasan's own devices; none when absent. */
  irq?: number;
  /** Handed to the factory as is (structured-cloneable data). */
  options?: unknown;
  /** The device's state and petasan's lock and counters for it, when it opted in to the vCPU fast path. */
  shared?: SharedUserDevice;
}

/** A fast-path user device's memory: `state` is the device's own (context.shared); `control` holds the lock and counters. */
export interface SharedUserDevice {
  state: SharedArrayBuffer;
  control: SharedArrayBuffer;
}

const METRIC_NAMES = ["reads", "writes", "failures"] as const;
/** The lock word, then the counters. */
const CONTROL_WORDS = 1 + METRIC_NAMES.length;

export function newSharedUserDevice(stateBytes: number): SharedUserDevice {
  return { state: new SharedArrayBuffer(stateBytes), control: SharedState.allocate(CONTROL_WORDS) };
}

/** Guest RAM as a device sees it: copies in and out, bounds-checked (out of range throws GuestMemoryError). */
export interface GuestMemoryAccess {
  read(addr: number, length: number): Uint8Array;
  write(addr: number, data: Uint8Array): void;
}

/** What a user device's factory gets, on the device thread. */
export interface UserDeviceContext<Options = unknown> {
  /** The spec's `options`. */
  readonly options: Options;
  /** The spec's `name`. */
  readonly name: string;
  /**
   * The device's interrupt line, when the spec names an `irq`: setLevel for level-triggered, trigger for one edge.
   * A device with shared state keeps its level there: every setLevel call reaches KVM, from whichever thread makes it.
   */
  readonly irq?: InterruptLine;
  readonly memory: GuestMemoryAccess;
  /** A line in the VM's log. */
  log(level: "Error" | "Warning" | "Info" | "Debug", message: string): void;
  /**
   * The device's state, when it asked for shared state (sharedStateBytes): the same memory on every thread that
   * makes the device. Keep every register there: each thread has its own device object.
   */
  readonly shared?: SharedArrayBuffer;
  /**
   * True for the first device made over `shared` (on the device thread): only it sets up the shared state (e.g. from
   * `options`); the vCPU threads' devices find it set up. Always true for a device without shared state.
   */
  readonly first: boolean;
}

/**
 * What a user device may add to make its VM snapshottable (the same pair as VirtioDevice's): a VM whose user devices
 * all have saveState() can be snapshotted, else snapshot() is refused naming the device that has none.
 */
export interface UserDeviceStateHooks {
  /** The device's state as JSON data (no bigint, typed array or function), called on the paused VM. */
  saveState?(): unknown;
  /**
   * Called once on a device made for a VM restored from a snapshot (loadSnapshot with the same `devices`), with
   * what saveState() returned, before the guest runs; throw to refuse the state (the restore fails, naming the device).
   */
  restoreState?(saved: unknown): void;
}

/** What a user device factory returns: a BusDevice, optionally with snapshot hooks. */
export type UserBusDeviceModel = BusDevice & UserDeviceStateHooks;

/**
 * A user device module's default export. Runs on the device thread, once, while the VM starts. The device's
 * code must be synchronous: the device thread sleeps in epoll_wait, not in Node's event loop, so promises,
 * timers and I/O callbacks started there never complete.
 */
export type UserDeviceFactory<Options = unknown> = (context: UserDeviceContext<Options>) => UserBusDeviceModel;

/** A user device could not be loaded or placed; the message names it. */
export class UserDeviceError extends Error {
  override readonly name = "UserDeviceError";
}

export interface LoadedUserDevice {
  spec: UserDeviceSpec;
  factory: UserDeviceFactory;
}

/** Imports every user device module (before the device thread starts its loop). */
export async function loadUserDevices(specs: readonly UserDeviceSpec[]): Promise<LoadedUserDevice[]> {
  const loaded: LoadedUserDevice[] = [];
  for (const spec of specs) {
    let module: { default?: unknown };
    try {
      module = (await import(spec.module)) as { default?: unknown };
    } catch (error) {
      throw new UserDeviceError(`device ${spec.name}: cannot load ${spec.module}: ${(error as Error).message}`, { cause: error });
    }
    if (typeof module.default !== "function") throw new UserDeviceError(`device ${spec.name}: ${spec.module} has no default export that makes a device (a function)`);
    loaded.push({ spec, factory: module.default as UserDeviceFactory });
  }
  return loaded;
}

export interface UserDeviceWiring {
  pio: Bus;
  mmio: Bus;
  memory: GuestMemory;
  log: Logger;
  /** An interrupt line on `gsi`; `shared`: for a device several threads serve (its level then is the device's to keep). */
  irqLine(gsi: number, shared: boolean): InterruptLine;
  /** GSIs petasan's own devices use. */
  takenGsis: ReadonlySet<number>;
  /** A vCPU thread making the fast-path devices again over their shared state (not their first instance). */
  again?: boolean;
}

/** Counters per user device, in the VM's device metrics under `user_<name>`. */
export interface UserDeviceMetrics {
  reads: number;
  writes: number;
  /** Accesses whose read or write threw (answered with all ones / ignored). */
  failures: number;
}

export interface AttachedUserDevice {
  spec: UserDeviceSpec;
  /** Counters since boot (of every thread, for a fast-path device). */
  readonly metrics: UserDeviceMetrics;
  /** The device as its factory made it (snapshots call its saveState/restoreState). */
  device: UserBusDeviceModel;
}

/** Makes each device and puts it on its bus. */
export function attachUserDevices(loaded: readonly LoadedUserDevice[], wiring: UserDeviceWiring): AttachedUserDevice[] {
  return loaded.map(({ spec, factory }) => {
    const log = (level: "Error" | "Warning" | "Info" | "Debug", message: string) => wiring.log(level, `device ${spec.name}: ${message}`);
    if (spec.irq !== undefined && wiring.takenGsis.has(spec.irq)) {
      throw new UserDeviceError(`device ${spec.name}: irq ${spec.irq} is taken by one of petasan's devices (in use: ${[...wiring.takenGsis].sort((a, b) => a - b).join(", ")})`);
    }
    let device: UserBusDeviceModel;
    try {
      device = factory({
        options: spec.options,
        name: spec.name,
        irq: spec.irq === undefined ? undefined : wiring.irqLine(spec.irq, spec.shared !== undefined),
        memory: { read: (addr, length) => wiring.memory.read(addr, length), write: (addr, data) => wiring.memory.write(addr, data) },
        log,
        shared: spec.shared?.state,
        first: wiring.again !== true,
      });
    } catch (error) {
      throw new UserDeviceError(`device ${spec.name}: its factory failed: ${(error as Error).message}`, { cause: error });
    }
    if (typeof device?.read !== "function" || typeof device?.write !== "function") {
      throw new UserDeviceError(`device ${spec.name}: its factory returned no device (an object with read and write)`);
    }
    const control = new SharedState(spec.shared?.control ?? SharedState.allocate(CONTROL_WORDS), CONTROL_WORDS);
    const counters = new SharedCounters(control, 1, METRIC_NAMES);
    const guarded = guard(device, control, counters, log);
    try {
      (spec.bus === "pio" ? wiring.pio : wiring.mmio).insert(guarded, spec.base, spec.length, `user device ${spec.name}`);
    } catch (error) {
      throw new UserDeviceError(`device ${spec.name}: ${(error as Error).message}`, { cause: error });
    }
    return { spec, get metrics() { return counters.read(); }, device };
  });
}

/**
 * The device behind a wall: what it throws is counted and logged (once per thread), never passed on to the exit
 * server; its accesses hold its lock, so the threads that serve a fast-path device take turns.
 */
function guard(device: BusDevice, lock: SharedState, counters: SharedCounters<(typeof METRIC_NAMES)[number]>, log: (level: "Error", message: string) => void): BusDevice {
  let loggedFailure = false;
  const failed = (what: string, offset: number, error: unknown) => {
    counters.bump("failures");
    if (loggedFailure) return;
    loggedFailure = true;
    log("Error", `${what} at offset 0x${offset.toString(16)} threw (${(error as Error)?.message ?? error}); further failures are only counted`);
  };
  return {
    read(offset, data) {
      counters.bump("reads");
      lock.lock();
      try {
        device.read(offset, data);
      } catch (error) {
        data.fill(0xff);
        failed("read", offset, error);
      } finally {
        lock.unlock();
      }
    },
    write(offset, data) {
      counters.bump("writes");
      lock.lock();
      try {
        device.write(offset, data);
      } catch (error) {
        failed("write", offset, error);
      } finally {
        lock.unlock();
      }
    },
  };
}

/** What a user virtio device's factory gets, on the device thread; guest memory and queues come with activate(). */
export interface UserVirtioDeviceContext<Options = unknown> {
  readonly options: Options;
  readonly name: string;
  log(level: "Error" | "Warning" | "Info" | "Debug", message: string): void;
  /**
   * Call after the device's config space changed by itself (not by a driver's write): the driver is told (a new
   * config generation and a configuration change interrupt, virtio 1.2 §2.5, §4.2.2), and the vCPU threads, which
   * answer the driver's config reads from a copy of it, read it again. Without the call the driver keeps seeing
   * the config space as it was.
   */
  configChanged(): void;
}

/**
 * A user virtio device module's default export: makes a VirtioDevice (device type, features, queue sizes,
 * config space, activate/processQueue/reset) that petasan puts behind its virtio-mmio transport, with an
 * MMIO window, an interrupt, an ioeventfd per queue and a `virtio_mmio.device=` entry on the kernel command line.
 */
export type UserVirtioDeviceFactory<Options = unknown> = (context: UserVirtioDeviceContext<Options>) => VirtioDevice;

type UserVirtioSpec = Extract<VirtioBackendSpec, { kind: "user" }>;

/** Imports the modules of the user's virtio devices among `backends`, by device id. */
export async function loadUserVirtioDevices(backends: readonly VirtioDeviceSpec[]): Promise<Map<string, UserVirtioDeviceFactory>> {
  const factories = new Map<string, UserVirtioDeviceFactory>();
  for (const { backend } of backends) {
    if (backend.kind !== "user") continue;
    const [loaded] = await loadUserDevices([{ module: backend.module, name: backend.id, bus: "mmio", base: 0, length: 0 }]);
    factories.set(backend.id, loaded.factory as unknown as UserVirtioDeviceFactory);
  }
  return factories;
}

/** Makes user virtio device `spec` with its loaded factory, and checks what came back (errors are prefixed with the device's name by the caller). */
export function createUserVirtioDevice(spec: UserVirtioSpec, factories: ReadonlyMap<string, UserVirtioDeviceFactory>, logger: Logger, configChanged: () => void): VirtioDevice {
  const factory = factories.get(spec.id);
  if (factory === undefined) throw new UserDeviceError("its module was not loaded");
  const log = (level: "Error" | "Warning" | "Info" | "Debug", message: string) => logger(level, `device ${spec.id}: ${message}`);
  let device: VirtioDevice;
  try {
    device = factory({ options: spec.options, name: spec.id, log, configChanged });
  } catch (error) {
    throw new UserDeviceError(`its factory failed: ${(error as Error).message}`, { cause: error });
  }
  const problem = virtioDeviceProblem(device, spec.queues);
  if (problem) throw new UserDeviceError(`its factory returned no usable virtio device: ${problem}`);
  guardConfigSpace(device, log);
  return device;
}

function virtioDeviceProblem(device: VirtioDevice, queues: number): string | undefined {
  if (typeof device !== "object" || device === null) return "not an object";
  if (!Number.isInteger(device.deviceType) || device.deviceType <= 0) return "deviceType must be a virtio device ID (virtio 1.2 §5)";
  if (typeof device.features !== "bigint") return "features must be a bigint";
  if (!Array.isArray(device.queueMaxSizes) || device.queueMaxSizes.length !== queues) return `queueMaxSizes must list ${queues} queue sizes (the device's "queues")`;
  for (const method of ["readConfig", "writeConfig", "activate", "processQueue", "reset"] as const) {
    if (typeof device[method] !== "function") return `${method} must be a method`;
  }
  return undefined;
}

/** Config-space accesses are register exits: one that throws reads as zeros, is logged once, and the VM goes on. */
function guardConfigSpace(device: VirtioDevice, log: (level: "Error", message: string) => void): void {
  const readConfig = device.readConfig.bind(device);
  const writeConfig = device.writeConfig.bind(device);
  let failures = 0;
  const failed = (what: string, error: unknown) => {
    if (failures++ === 0) log("Error", `config space ${what} threw (${(error as Error)?.message ?? error}); further failures are not logged`);
  };
  device.readConfig = (offset, data) => {
    try {
      readConfig(offset, data);
    } catch (error) {
      data.fill(0);
      failed("read", error);
    }
  };
  device.writeConfig = (offset, data) => {
    try {
      writeConfig(offset, data);
    } catch (error) {
      failed("write", error);
    }
  };
}
