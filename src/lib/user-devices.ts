/**
 * Devices written by the user, as createVm takes them (CreateVmOptions.devices): checked here, on the
 * controlling thread, so a bad range or name fails createVm with one line instead of a device thread error.
 */
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { IOAPIC_ADDR, IOAPIC_SIZE, LAPIC_ADDR, LAPIC_SIZE, MMIO_HOLE_END, MMIO_HOLE_START, VIRTIO_MMIO_END, VIRTIO_MMIO_START } from "../arch/x86/layout.js";
import { newSharedUserDevice, type UserDeviceSpec } from "../vmm/device-thread/user-devices.js";
import type { VirtioBackendSpec } from "../vmm/device-thread/protocol.js";

/** A device written by the user: on the port-I/O or MMIO bus (BusDevice), or a virtio device on petasan's transport. */
export type UserDevice<Options = unknown> = UserBusDevice<Options> | UserVirtioDevice<Options>;

export interface UserBusDevice<Options = unknown> {
  /** The device's module: a file path or a file: URL; its default export is a UserDeviceFactory. */
  module: string | URL;
  /** Port I/O (base + length within 0..0x10000) or MMIO (within the 32-bit hole [3 GiB, 4 GiB), outside petasan's virtio window and the APICs). */
  bus: "pio" | "mmio";
  base: number;
  length: number;
  /** Unique among the VM's user devices: letters, digits, "-" and "_"; metrics show it as `user_<name>`. */
  name: string;
  /** An IOAPIC pin (3, 5 to 23) for the device's interrupt, not one a virtio device of the VM uses (they take 5 upward). */
  irq?: number;
  /** Handed to the factory (structured-cloneable data). */
  options?: Options;
  /**
   * Opt in to the register fast path: the device keeps all its state in `context.shared`, a SharedArrayBuffer of this
   * many bytes (1 to 1 MiB, zeroed), and petasan makes it on every vCPU thread too, which then serve the guest's
   * accesses where the exit happens instead of handing them to the device thread. petasan serializes the
   * accesses of all threads with one lock. Without it, the device lives on the device thread alone.
   */
  sharedStateBytes?: number;
}

/**
 * A virtio device written by the user: petasan gives it the next virtio-mmio window after its own devices,
 * an interrupt, an ioeventfd per queue, and announces it on the kernel command line (virtio_mmio.device=).
 */
export interface UserVirtioDevice<Options = unknown> {
  /** The device's module: a file path or a file: URL; its default export is a UserVirtioDeviceFactory. */
  module: string | URL;
  bus: "virtio";
  /** How many virtqueues the device has (1 to 8); its `queueMaxSizes` must list as many. */
  queues: number;
  /** As a bus device's name (unique among the VM's user devices). */
  name: string;
  options?: Options;
}

/** The user's devices, split by where they go. */
export interface ResolvedUserDevices {
  bus: UserDeviceSpec[];
  virtio: VirtioBackendSpec[];
}

const MAX_USER_QUEUES = 8;
const MAX_SHARED_STATE_BYTES = 1 << 20;

/** A user device that cannot be placed as asked. */
export class UserDeviceConfigError extends Error {
  override readonly name = "UserDeviceConfigError";
}

/**
 * Ports KVM's in-kernel devices serve (never reaching the device thread) and those a vCPU serves itself:
 * PIC 0x20-0x21 and 0xa0-0xa1, PIT 0x40-0x43 and its speaker port 0x61, ELCR 0x4d0-0x4d1, io_delay 0x80 and 0xed.
 */
const RESERVED_PORTS: readonly [number, number, string][] = [
  [0x20, 2, "the in-kernel PIC"], [0x40, 4, "the in-kernel PIT"], [0x61, 1, "the PIT's speaker port"], [0x80, 1, "the io_delay port"],
  [0xa0, 2, "the in-kernel PIC"], [0xed, 1, "the io_delay port"], [0x4d0, 2, "the in-kernel ELCR"],
];
const RESERVED_MMIO: readonly [number, number, string][] = [
  [VIRTIO_MMIO_START, VIRTIO_MMIO_END - VIRTIO_MMIO_START, "petasan's virtio-mmio window"],
  [IOAPIC_ADDR, IOAPIC_SIZE, "the IOAPIC"],
  [LAPIC_ADDR, LAPIC_SIZE, "the local APIC"],
];
const FREE_IRQS = new Set([3, ...Array.from({ length: 19 }, (_, i) => i + 5)].filter((irq) => irq !== 8));

export function resolveUserDevices(devices: readonly UserDevice[]): ResolvedUserDevices {
  const names = new Set<string>();
  const resolved: ResolvedUserDevices = { bus: [], virtio: [] };
  devices.forEach((d, i) => {
    const what = `devices[${i}]`;
    if (typeof d.name !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(d.name)) throw new UserDeviceConfigError(`${what}.name: must be 1 to 64 letters, digits, "-" or "_"`);
    if (names.has(d.name)) throw new UserDeviceConfigError(`${what}.name: "${d.name}" is already used`);
    names.add(d.name);
    if (d.bus === "virtio") {
      if ((d as { sharedStateBytes?: unknown }).sharedStateBytes !== undefined) {
        throw new UserDeviceConfigError(`${what}.sharedStateBytes: only for "pio" and "mmio" devices (a virtio device's registers are petasan's transport's, already served on the vCPU threads)`);
      }
      if (!Number.isInteger(d.queues) || d.queues < 1 || d.queues > MAX_USER_QUEUES) throw new UserDeviceConfigError(`${what}.queues: must be 1 to ${MAX_USER_QUEUES}`);
      resolved.virtio.push({ kind: "user", id: d.name, module: moduleUrl(d.module, what), queues: d.queues, options: d.options });
      return;
    }
    if (d.bus !== "pio" && d.bus !== "mmio") throw new UserDeviceConfigError(`${what}.bus: must be "pio", "mmio" or "virtio"`);
    if (!Number.isSafeInteger(d.base) || !Number.isSafeInteger(d.length) || d.base < 0 || d.length < 1) {
      throw new UserDeviceConfigError(`${what}: base and length must be integers, length at least 1`);
    }
    const [start, end, reserved] = d.bus === "pio" ? [0, 0x10000, RESERVED_PORTS] : [MMIO_HOLE_START, MMIO_HOLE_END, RESERVED_MMIO];
    const range = `${d.bus} 0x${d.base.toString(16)}+0x${d.length.toString(16)}`;
    if (d.base < start || d.base + d.length > end) throw new UserDeviceConfigError(`${what}: ${range} is outside 0x${start.toString(16)}..0x${end.toString(16)}`);
    const clash = reserved.find(([base, length]) => d.base < base + length && base < d.base + d.length);
    if (clash) throw new UserDeviceConfigError(`${what}: ${range} overlaps ${clash[2]} at 0x${clash[0].toString(16)}`);
    if (d.irq !== undefined && !FREE_IRQS.has(d.irq)) throw new UserDeviceConfigError(`${what}.irq: must be 3 or 5 to 23 except 8`);
    const bytes = d.sharedStateBytes;
    if (bytes !== undefined && (!Number.isInteger(bytes) || bytes < 1 || bytes > MAX_SHARED_STATE_BYTES)) {
      throw new UserDeviceConfigError(`${what}.sharedStateBytes: must be an integer from 1 to ${MAX_SHARED_STATE_BYTES}`);
    }
    resolved.bus.push({
      module: moduleUrl(d.module, what), bus: d.bus, base: d.base, length: d.length, name: d.name, irq: d.irq, options: d.options,
      ...(bytes !== undefined && { shared: newSharedUserDevice(bytes) }),
    });
  });
  return resolved;
}

function moduleUrl(module: string | URL, what: string): string {
  if (module instanceof URL) return module.href;
  if (typeof module !== "string" || module === "") throw new UserDeviceConfigError(`${what}.module: must be a file path or a file: URL`);
  if (module.startsWith("file:")) return module;
  return pathToFileURL(isAbsolute(module) ? module : resolve(module)).href;
}
