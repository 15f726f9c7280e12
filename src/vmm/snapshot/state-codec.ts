/**
 * The snapshot body as JSON: KVM structs as base64, 64-bit values as hex strings, device states as their
 * plain data. Decoding checks every shape and names the first field that is wrong (a SnapshotFileError), so
 * a body from another build is refused before any VM exists.
 */
import type { VcpuKvmState, VmKvmState } from "../../kvm/state.js";
import type { CpuidEntry } from "../../kvm/kvm.js";
import type { VmConfig } from "../../config/vm-config.js";
import { parseVmConfig } from "../../config/vm-resources.js";
import { SnapshotFileError } from "./file-format.js";

export type SnapshotType = "Full" | "Diff";

export interface SavedVirtioDevice {
  kind: string;
  id: string;
  base: number;
  gsi: number;
  transport: unknown;
  /** The device's own state (VirtioDevice.saveState), for devices that have one. */
  device?: unknown;
}

/** A bus device written by the user: where it was, and its saveState() data. */
export interface SavedUserDevice {
  name: string;
  bus: "pio" | "mmio";
  base: number;
  length: number;
  state: unknown;
  /** A device with shared state (sharedStateBytes): those bytes, base64; petasan saves them itself. */
  shared?: string;
}

export interface SavedDevices {
  serial: unknown;
  i8042: unknown;
  rtc: unknown;
  virtio: SavedVirtioDevice[];
  /** Bus devices written by the user (format 2). */
  user: SavedUserDevice[];
}

export type SavedVcpuState = Record<keyof VcpuKvmState, unknown>;
export type SavedVmState = Record<keyof VmKvmState, string>;

export interface SnapshotBody {
  snapshotType: SnapshotType;
  config: VmConfig;
  /** Guest RAM regions, in memory-file order. */
  memory: { guestAddr: number; size: number }[];
  vm: SavedVmState;
  vcpus: SavedVcpuState[];
  devices: SavedDevices;
}

const b64 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.length).toString("base64");
const hex = (v: bigint) => `0x${v.toString(16)}`;

export function encodeVcpuState(s: VcpuKvmState): SavedVcpuState {
  return {
    mpState: s.mpState, regs: b64(s.regs), sregs: b64(s.sregs), xsave: b64(s.xsave), xcrs: b64(s.xcrs), debugregs: b64(s.debugregs),
    lapic: b64(s.lapic), cpuid: s.cpuid, msrs: s.msrs.map((m) => [m.index, hex(m.data)]), events: b64(s.events),
  };
}

export function encodeVmState(s: VmKvmState): SavedVmState {
  return { pit: b64(s.pit), clock: b64(s.clock), picMaster: b64(s.picMaster), picSlave: b64(s.picSlave), ioapic: b64(s.ioapic) };
}

class BodyReader {
  constructor(private readonly path: string) {}
  fail(field: string, problem: string): never {
    throw new SnapshotFileError(`snapshot file ${this.path}: ${field} ${problem}`);
  }
  object(v: unknown, field: string): Record<string, unknown> {
    if (typeof v !== "object" || v === null || Array.isArray(v)) this.fail(field, "is not an object");
    return v as Record<string, unknown>;
  }
  array(v: unknown, field: string, max: number): unknown[] {
    if (!Array.isArray(v) || v.length > max) this.fail(field, `is not a list of at most ${max}`);
    return v;
  }
  int(v: unknown, field: string, min: number, max: number): number {
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) this.fail(field, `is not an integer in [${min}, ${max}]`);
    return v;
  }
  bytes(v: unknown, field: string): Uint8Array {
    if (typeof v !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) this.fail(field, "is not base64");
    return new Uint8Array(Buffer.from(v, "base64"));
  }
  u64(v: unknown, field: string): bigint {
    if (typeof v !== "string" || !/^0x[0-9a-f]{1,16}$/.test(v)) this.fail(field, "is not a 64-bit hex string");
    return BigInt(v);
  }
}

const MAX_VCPUS = 1024;
const MAX_REGIONS = 16;
const MAX_CPUID = 4096;
const MAX_MSRS = 16384;

/** Checks the shape of a decoded body; KVM and the devices check sizes and values when they take the state. */
export function parseSnapshotBody(value: unknown, path: string): SnapshotBody & { decodedVcpus: VcpuKvmState[]; decodedVm: VmKvmState } {
  const r = new BodyReader(path);
  const body = r.object(value, "the body");
  const snapshotType = body.snapshotType;
  if (snapshotType !== "Full" && snapshotType !== "Diff") r.fail("snapshotType", 'is not "Full" or "Diff"');
  const config = (() => {
    try {
      return parseVmConfig(body.config);
    } catch (e) {
      return r.fail("config", `is not a valid VM configuration: ${(e as Error).message}`);
    }
  })();
  const memory = r.array(body.memory, "memory", MAX_REGIONS).map((m, i) => {
    const o = r.object(m, `memory[${i}]`);
    return { guestAddr: r.int(o.guestAddr, `memory[${i}].guestAddr`, 0, 2 ** 52), size: r.int(o.size, `memory[${i}].size`, 4096, 2 ** 52) };
  });
  if (memory.length === 0) r.fail("memory", "lists no RAM");
  const vmRaw = r.object(body.vm, "vm");
  const decodedVm: VmKvmState = {
    pit: r.bytes(vmRaw.pit, "vm.pit"), clock: r.bytes(vmRaw.clock, "vm.clock"), picMaster: r.bytes(vmRaw.picMaster, "vm.picMaster"),
    picSlave: r.bytes(vmRaw.picSlave, "vm.picSlave"), ioapic: r.bytes(vmRaw.ioapic, "vm.ioapic"),
  };
  const vcpus = r.array(body.vcpus, "vcpus", MAX_VCPUS);
  if (vcpus.length !== config["machine-config"].vcpu_count) r.fail("vcpus", `holds ${vcpus.length} vCPUs, the configuration ${config["machine-config"].vcpu_count}`);
  const decodedVcpus = vcpus.map((v, i) => {
    const f = `vcpus[${i}]`;
    const o = r.object(v, f);
    const cpuid = r.array(o.cpuid, `${f}.cpuid`, MAX_CPUID).map((e, j) => {
      const c = r.object(e, `${f}.cpuid[${j}]`);
      const u32 = (k: string) => r.int(c[k], `${f}.cpuid[${j}].${k}`, 0, 0xffff_ffff);
      return { function: u32("function"), index: u32("index"), flags: u32("flags"), eax: u32("eax"), ebx: u32("ebx"), ecx: u32("ecx"), edx: u32("edx") } satisfies CpuidEntry;
    });
    const msrs = r.array(o.msrs, `${f}.msrs`, MAX_MSRS).map((m, j) => {
      const pair = r.array(m, `${f}.msrs[${j}]`, 2);
      return { index: r.int(pair[0], `${f}.msrs[${j}] index`, 0, 0xffff_ffff), data: r.u64(pair[1], `${f}.msrs[${j}] value`) };
    });
    return {
      mpState: r.int(o.mpState, `${f}.mpState`, 0, 0xffff_ffff), regs: r.bytes(o.regs, `${f}.regs`), sregs: r.bytes(o.sregs, `${f}.sregs`),
      xsave: r.bytes(o.xsave, `${f}.xsave`), xcrs: r.bytes(o.xcrs, `${f}.xcrs`), debugregs: r.bytes(o.debugregs, `${f}.debugregs`),
      lapic: r.bytes(o.lapic, `${f}.lapic`), cpuid, msrs, events: r.bytes(o.events, `${f}.events`),
    } satisfies VcpuKvmState;
  });
  const d = r.object(body.devices, "devices");
  const virtio = r.array(d.virtio, "devices.virtio", 64).map((v, i) => {
    const o = r.object(v, `devices.virtio[${i}]`);
    if (typeof o.kind !== "string" || typeof o.id !== "string") r.fail(`devices.virtio[${i}]`, "lacks its kind or id");
    return {
      kind: o.kind as string, id: o.id as string, base: r.int(o.base, `devices.virtio[${i}].base`, 0, 2 ** 32), gsi: r.int(o.gsi, `devices.virtio[${i}].gsi`, 0, 1023),
      transport: o.transport, ...(o.device !== undefined && { device: o.device }),
    };
  });
  const user = r.array(d.user, "devices.user", 64).map((u, i) => {
    const o = r.object(u, `devices.user[${i}]`);
    if (typeof o.name !== "string" || (o.bus !== "pio" && o.bus !== "mmio")) r.fail(`devices.user[${i}]`, "lacks its name or bus");
    if (o.shared !== undefined && (typeof o.shared !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(o.shared))) r.fail(`devices.user[${i}].shared`, "is not base64 text");
    return {
      name: o.name as string, bus: o.bus as "pio" | "mmio", base: r.int(o.base, `devices.user[${i}].base`, 0, 2 ** 32), length: r.int(o.length, `devices.user[${i}].length`, 1, 2 ** 32), state: o.state,
      ...(o.shared !== undefined && { shared: o.shared as string }),
    };
  });
  return {
    snapshotType: snapshotType as SnapshotType, config, memory, vm: body.vm as SavedVmState, vcpus: vcpus as SavedVcpuState[],
    devices: { serial: d.serial, i8042: d.i8042, rtc: d.rtc, virtio, user }, decodedVcpus, decodedVm,
  };
}
