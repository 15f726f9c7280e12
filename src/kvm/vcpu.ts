/** A KVM vCPU fd: register state, CPUID, MSRs, LAPIC, MP state and the mmap'd kvm_run area. */
import { close, errno, mmap, munmap } from "../sys/libc.js";
import { kvmIoctl, type IoctlName } from "./ioctl-call.js";
import { KvmError } from "./errors.js";
import { CStruct } from "./cstruct.js";
import {
  kvmCpuid2, kvmCpuidEntry2, kvmDtable, kvmFpu, kvmLapicState, kvmMpState, kvmMsrEntry, kvmMsrs, kvmRegs, kvmSegment,
  kvmSregs, SEGMENT_NAMES, type RegName, type SegmentName,
} from "./structs.js";
import type { CpuidEntry } from "./kvm.js";

export type Regs = Record<RegName, bigint>;

/** struct kvm_segment, field for field; flags are 0/1. */
export interface Segment {
  base: number;
  /** Byte-granular limit: KVM wants the scaled value even when g = 1. */
  limit: number;
  selector: number;
  type: number;
  present: number;
  dpl: number;
  db: number;
  s: number;
  l: number;
  g: number;
  avl: number;
  unusable: number;
}

export interface DescriptorTable {
  base: number;
  limit: number;
}

export interface Sregs {
  segments: Record<SegmentName, Segment>;
  gdt: DescriptorTable;
  idt: DescriptorTable;
  cr0: bigint;
  cr2: bigint;
  cr3: bigint;
  cr4: bigint;
  cr8: bigint;
  efer: bigint;
  apicBase: bigint;
}

export interface FpuState {
  fcw: number;
  mxcsr: number;
}

export interface MsrEntry {
  index: number;
  data: bigint;
}

const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 1;
const MAP_FAILED = 0xffff_ffff_ffff_ffffn;

export class Vcpu {
  /** Host address of this vCPU's kvm_run area (shared with the thread that runs it). */
  readonly runAddr: bigint;
  /** Whether this instance made the kvm_run mapping (workers reuse the builder's), and so unmaps it. */
  private ownsRunMapping = false;

  /** `runAddr`: the kvm_run mapping another thread already made for this fd; mapped here when absent. */
  constructor(readonly fd: number, readonly id: number, readonly mmapSize: number, runAddr?: bigint) {
    if (runAddr === undefined) {
      runAddr = mmap(null, mmapSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) as bigint;
      if (runAddr === MAP_FAILED) throw new KvmError("mmap of kvm_run", errno(), `vCPU ${id}`);
      this.ownsRunMapping = true;
    }
    this.runAddr = runAddr;
  }

  private ioctl(name: IoctlName, arg: Uint8Array | number): number {
    return kvmIoctl(this.fd, name, arg, `vCPU ${this.id}`);
  }

  getRegs(): Regs {
    const r = new CStruct(kvmRegs);
    this.ioctl("KVM_GET_REGS", r.bytes);
    return Object.fromEntries(Object.keys(kvmRegs.offsets).map((n) => [n, r.u64(n as RegName)])) as Regs;
  }

  setRegs(regs: Partial<Regs>): void {
    const r = new CStruct(kvmRegs);
    r.setU64("rflags", 2n); // bit 1 of RFLAGS is reserved and always set
    for (const [name, value] of Object.entries(regs)) r.setU64(name as RegName, value as bigint);
    this.ioctl("KVM_SET_REGS", r.bytes);
  }

  getSregs(): Sregs {
    const s = new CStruct(kvmSregs);
    this.ioctl("KVM_GET_SREGS", s.bytes);
    return decodeSregs(s);
  }

  setSregs(sregs: Sregs): void {
    const s = new CStruct(kvmSregs);
    // Read-modify-write keeps interrupt_bitmap and anything petasan does not model.
    this.ioctl("KVM_GET_SREGS", s.bytes);
    encodeSregs(s, sregs);
    this.ioctl("KVM_SET_SREGS", s.bytes);
  }

  setFpu(fpu: FpuState): void {
    const f = new CStruct(kvmFpu);
    f.setU16("fcw", fpu.fcw);
    f.setU32("mxcsr", fpu.mxcsr);
    this.ioctl("KVM_SET_FPU", f.bytes);
  }

  setMsrs(entries: readonly MsrEntry[]): void {
    const m = new CStruct(kvmMsrs, entries.length * kvmMsrEntry.size);
    m.setU32("nmsrs", entries.length);
    entries.forEach((e, i) => {
      const at = kvmMsrs.offsets.entries + i * kvmMsrEntry.size;
      m.view.setUint32(at + kvmMsrEntry.offsets.index, e.index, true);
      m.view.setBigUint64(at + kvmMsrEntry.offsets.data, e.data, true);
    });
    const written = this.ioctl("KVM_SET_MSRS", m.bytes);
    if (written !== entries.length) {
      const failed = entries[written];
      throw new KvmError("KVM_SET_MSRS", 0, `vCPU ${this.id}: KVM refused MSR 0x${failed.index.toString(16)} (${written} of ${entries.length} set)`);
    }
  }

  getMsrs(indices: readonly number[]): MsrEntry[] {
    const m = new CStruct(kvmMsrs, indices.length * kvmMsrEntry.size);
    m.setU32("nmsrs", indices.length);
    indices.forEach((index, i) => m.view.setUint32(kvmMsrs.offsets.entries + i * kvmMsrEntry.size, index, true));
    const read = this.ioctl("KVM_GET_MSRS", m.bytes);
    return indices.slice(0, read).map((index, i) => ({
      index,
      data: m.view.getBigUint64(kvmMsrs.offsets.entries + i * kvmMsrEntry.size + kvmMsrEntry.offsets.data, true),
    }));
  }

  setCpuid2(entries: readonly CpuidEntry[]): void {
    const c = new CStruct(kvmCpuid2, entries.length * kvmCpuidEntry2.size);
    c.setU32("nent", entries.length);
    const o = kvmCpuidEntry2.offsets;
    entries.forEach((e, i) => {
      const at = kvmCpuid2.offsets.entries + i * kvmCpuidEntry2.size;
      for (const k of ["function", "index", "flags", "eax", "ebx", "ecx", "edx"] as const) c.view.setUint32(at + o[k], e[k] >>> 0, true);
    });
    this.ioctl("KVM_SET_CPUID2", c.bytes);
  }

  /** The LAPIC register page (4 KiB of APIC registers, 1 KiB as KVM exposes it). */
  getLapic(): Uint8Array {
    const l = new CStruct(kvmLapicState);
    this.ioctl("KVM_GET_LAPIC", l.bytes);
    return l.bytes;
  }

  setLapic(regs: Uint8Array): void {
    this.ioctl("KVM_SET_LAPIC", regs);
  }

  getMpState(): number {
    const m = new CStruct(kvmMpState);
    this.ioctl("KVM_GET_MP_STATE", m.bytes);
    return m.u32("mp_state");
  }

  setMpState(state: number): void {
    const m = new CStruct(kvmMpState);
    m.setU32("mp_state", state);
    this.ioctl("KVM_SET_MP_STATE", m.bytes);
  }

  /**
   * Closes the fd and, on the instance that mapped it, unmaps kvm_run: the mapping holds a reference to the
   * vCPU file and so to the whole VM, whose kernel side (memory slots, irqchip, its kvm-nx-lpage-recovery
   * thread) would otherwise outlive every fd for as long as the process runs.
   */
  close(): void {
    if (this.ownsRunMapping) munmap(this.runAddr, this.mmapSize);
    this.ownsRunMapping = false;
    close(this.fd);
  }
}

function decodeSregs(s: CStruct<keyof typeof kvmSregs.offsets>): Sregs {
  const seg = (name: SegmentName): Segment => {
    const at = kvmSregs.offsets[name];
    const o = kvmSegment.offsets;
    const v = s.view;
    return {
      base: Number(v.getBigUint64(at + o.base, true)),
      limit: v.getUint32(at + o.limit, true),
      selector: v.getUint16(at + o.selector, true),
      type: v.getUint8(at + o.type), present: v.getUint8(at + o.present), dpl: v.getUint8(at + o.dpl),
      db: v.getUint8(at + o.db), s: v.getUint8(at + o.s), l: v.getUint8(at + o.l), g: v.getUint8(at + o.g),
      avl: v.getUint8(at + o.avl), unusable: v.getUint8(at + o.unusable),
    };
  };
  const table = (name: "gdt" | "idt"): DescriptorTable => ({
    base: Number(s.view.getBigUint64(kvmSregs.offsets[name] + kvmDtable.offsets.base, true)),
    limit: s.view.getUint16(kvmSregs.offsets[name] + kvmDtable.offsets.limit, true),
  });
  return {
    segments: Object.fromEntries(SEGMENT_NAMES.map((n) => [n, seg(n)])) as Record<SegmentName, Segment>,
    gdt: table("gdt"),
    idt: table("idt"),
    cr0: s.u64("cr0"), cr2: s.u64("cr2"), cr3: s.u64("cr3"), cr4: s.u64("cr4"), cr8: s.u64("cr8"),
    efer: s.u64("efer"), apicBase: s.u64("apic_base"),
  };
}

function encodeSregs(s: CStruct<keyof typeof kvmSregs.offsets>, sregs: Sregs): void {
  const v = s.view;
  for (const name of SEGMENT_NAMES) {
    const at = kvmSregs.offsets[name];
    const o = kvmSegment.offsets;
    const g = sregs.segments[name];
    v.setBigUint64(at + o.base, BigInt(g.base), true);
    v.setUint32(at + o.limit, g.limit >>> 0, true);
    v.setUint16(at + o.selector, g.selector, true);
    for (const k of ["type", "present", "dpl", "db", "s", "l", "g", "avl", "unusable"] as const) v.setUint8(at + o[k], g[k]);
  }
  for (const name of ["gdt", "idt"] as const) {
    v.setBigUint64(kvmSregs.offsets[name] + kvmDtable.offsets.base, BigInt(sregs[name].base), true);
    v.setUint16(kvmSregs.offsets[name] + kvmDtable.offsets.limit, sregs[name].limit, true);
  }
  s.setU64("cr0", sregs.cr0); s.setU64("cr2", sregs.cr2); s.setU64("cr3", sregs.cr3); s.setU64("cr4", sregs.cr4);
  s.setU64("cr8", sregs.cr8); s.setU64("efer", sregs.efer); s.setU64("apic_base", sregs.apicBase);
}
