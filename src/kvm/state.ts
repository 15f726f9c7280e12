/**
 * Reading and writing the whole KVM state of a vCPU and of a VM, for snapshots. The kernel structs travel
 * as opaque bytes (their layouts are KVM's business and only move between hosts of the same kind); MSRs
 * and CPUID are decoded, because the set of MSRs to save is chosen here.
 *
 * Order rules (api.rst and Firecracker's arch/x86_64/vcpu.rs save_state/restore_state):
 * - save: KVM_GET_MP_STATE first (it runs kvm_apic_accept_events, which may change LAPIC state), vCPU events last;
 * - restore: CPUID before anything that depends on it; SET_REGS clears pending exceptions, so it comes before
 *   SET_VCPU_EVENTS, which brings them back; SET_LAPIC after SET_SREGS (which sets the APIC base MSR) and
 *   before SET_MSRS (the TSC deadline MSR only sticks on a configured LAPIC); IA32_TSC before TSC_DEADLINE.
 */
import { ioctlPtr, errno } from "../sys/libc.js";
import { kvmIoctl } from "./ioctl-call.js";
import { KvmError } from "./errors.js";
import { CStruct } from "./cstruct.js";
import * as ioctls from "./ioctls.js";
import {
  kvmClockData, kvmCpuid2, kvmCpuidEntry2, kvmDebugregs, kvmIrqchip, kvmLapicState, kvmPitState2, kvmRegs,
  kvmSregs, kvmVcpuEvents, kvmXcrs, kvmXsave,
} from "./structs.js";
import { decodeCpuidEntries, type CpuidEntry, type Kvm } from "./kvm.js";
import type { Vcpu, MsrEntry } from "./vcpu.js";
import type { Vm } from "./vm.js";

const E2BIG = 7;
/** KVM reads or writes at most this many MSRs per KVM_GET/SET_MSRS call (MAX_IO_MSRS in arch/x86/kvm/x86.c). */
const MSR_CHUNK = 255;
const MSR_IA32_TSC = 0x10;
const MSR_IA32_TSC_DEADLINE = 0x6e0;
/** KVM_IRQCHIP_* chip ids (api.rst 4.27 KVM_GET_IRQCHIP). */
export const IRQCHIP_PIC_MASTER = 0;
export const IRQCHIP_PIC_SLAVE = 1;
export const IRQCHIP_IOAPIC = 2;

export interface VcpuKvmState {
  mpState: number;
  regs: Uint8Array;
  sregs: Uint8Array;
  /** struct kvm_xsave, KVM_CAP_XSAVE2 bytes when the host has it (AMX state), else 4096. */
  xsave: Uint8Array;
  xcrs: Uint8Array;
  debugregs: Uint8Array;
  lapic: Uint8Array;
  cpuid: CpuidEntry[];
  msrs: MsrEntry[];
  events: Uint8Array;
}

export interface VmKvmState {
  pit: Uint8Array;
  clock: Uint8Array;
  picMaster: Uint8Array;
  picSlave: Uint8Array;
  ioapic: Uint8Array;
}

/** The size of struct kvm_xsave this host's KVM uses (api.rst 4.137: KVM_CAP_XSAVE2 answers it, 0 when absent). */
export function xsaveSize(kvm: Kvm): number {
  return Math.max(kvmXsave.size, kvm.checkCap("XSAVE2"));
}

function getBytes(fd: number, name: Parameters<typeof kvmIoctl>[1], size: number, detail: string, init?: (b: Uint8Array) => void): Uint8Array {
  const b = new Uint8Array(size);
  init?.(b);
  kvmIoctl(fd, name, b, detail);
  return b;
}

/**
 * The MSRs of `indices` (KVM_GET_MSR_INDEX_LIST) that this vCPU can read. The list names MSRs a given vCPU
 * may not have (its CPUID hides the feature); KVM_GET_MSRS stops at the first such one and returns how many
 * it read, so that one is dropped and the rest read on.
 */
export function readableMsrs(vcpu: Vcpu, indices: readonly number[]): MsrEntry[] {
  const out: MsrEntry[] = [];
  let rest = [...indices];
  while (rest.length) {
    const chunk = rest.slice(0, MSR_CHUNK);
    const got = vcpu.getMsrs(chunk);
    out.push(...got);
    rest = rest.slice(got.length === chunk.length ? chunk.length : got.length + 1);
  }
  return out;
}

/** Every piece of KVM state of one vCPU; the vCPU must not be running (its thread paused or not started). */
export function saveVcpuState(vcpu: Vcpu, msrIndices: readonly number[], xsaveBytes: number): VcpuKvmState {
  const d = `vCPU ${vcpu.id}`;
  const fd = vcpu.fd;
  const mpState = vcpu.getMpState();
  const regs = getBytes(fd, "KVM_GET_REGS", kvmRegs.size, d);
  const sregs = getBytes(fd, "KVM_GET_SREGS", kvmSregs.size, d);
  const xsave = getBytes(fd, xsaveBytes > kvmXsave.size ? "KVM_GET_XSAVE2" : "KVM_GET_XSAVE", xsaveBytes, d);
  const xcrs = getBytes(fd, "KVM_GET_XCRS", kvmXcrs.size, d);
  const debugregs = getBytes(fd, "KVM_GET_DEBUGREGS", kvmDebugregs.size, d);
  const lapic = getBytes(fd, "KVM_GET_LAPIC", kvmLapicState.size, d);
  const cpuid = getCpuid2(vcpu);
  const msrs = readableMsrs(vcpu, msrIndices);
  const events = getBytes(fd, "KVM_GET_VCPU_EVENTS", kvmVcpuEvents.size, d);
  return { mpState, regs, sregs, xsave, xcrs, debugregs, lapic, cpuid, msrs, events };
}

/** Puts a saved vCPU state into a fresh vCPU of a fresh VM, in KVM's order (see the file comment). */
export function restoreVcpuState(vcpu: Vcpu, s: VcpuKvmState): void {
  const d = `vCPU ${vcpu.id}`;
  const fd = vcpu.fd;
  checkSize("regs", s.regs, kvmRegs.size);
  checkSize("sregs", s.sregs, kvmSregs.size);
  checkSize("xcrs", s.xcrs, kvmXcrs.size);
  checkSize("debugregs", s.debugregs, kvmDebugregs.size);
  checkSize("lapic", s.lapic, kvmLapicState.size);
  checkSize("events", s.events, kvmVcpuEvents.size);
  if (s.xsave.length < kvmXsave.size) throw new Error(`${d}: xsave state is ${s.xsave.length} bytes, less than ${kvmXsave.size}`);
  vcpu.setCpuid2(s.cpuid);
  vcpu.setMpState(s.mpState);
  kvmIoctl(fd, "KVM_SET_REGS", s.regs, d);
  kvmIoctl(fd, "KVM_SET_SREGS", s.sregs, d);
  kvmIoctl(fd, "KVM_SET_XSAVE", s.xsave, d);
  kvmIoctl(fd, "KVM_SET_XCRS", s.xcrs, d);
  kvmIoctl(fd, "KVM_SET_DEBUGREGS", s.debugregs, d);
  kvmIoctl(fd, "KVM_SET_LAPIC", s.lapic, d);
  const msrs = orderMsrsForRestore(s.msrs);
  for (let i = 0; i < msrs.length; i += MSR_CHUNK) vcpu.setMsrs(msrs.slice(i, i + MSR_CHUNK));
  kvmIoctl(fd, "KVM_SET_VCPU_EVENTS", s.events, d);
  kvmclockCtrl(vcpu);
}

/**
 * IA32_TSC before IA32_TSC_DEADLINE (KVM arms the deadline timer against the current TSC), the deadline last.
 * A deadline of 0 is replaced by the TSC, as Firecracker does (vcpu.rs fix_zero_tsc_deadline_msr): a timer that
 * had just fired and not been re-armed would otherwise never interrupt the restored vCPU again.
 */
export function orderMsrsForRestore(msrs: readonly MsrEntry[]): MsrEntry[] {
  const tsc = msrs.find((m) => m.index === MSR_IA32_TSC);
  const deadline = msrs.find((m) => m.index === MSR_IA32_TSC_DEADLINE);
  const rest = msrs.filter((m) => m.index !== MSR_IA32_TSC && m.index !== MSR_IA32_TSC_DEADLINE);
  return [
    ...(tsc ? [tsc] : []),
    ...rest,
    ...(deadline ? [{ index: deadline.index, data: deadline.data === 0n && tsc ? tsc.data : deadline.data }] : []),
  ];
}

/**
 * KVM_KVMCLOCK_CTRL (api.rst 4.80): tells the guest, through its kvmclock page, that the host stopped this vCPU,
 * so its soft-lockup watchdog does not report the gap. KVM answers EINVAL when the guest has not enabled
 * kvmclock (test guests, `no-kvmclock`): that is not an error, and neither is a host without the ioctl.
 */
export function kvmclockCtrl(vcpu: Vcpu): boolean {
  try {
    kvmIoctl(vcpu.fd, "KVM_KVMCLOCK_CTRL", 0, `vCPU ${vcpu.id}`);
    return true;
  } catch {
    return false;
  }
}

/** KVM_GET_CPUID2: the CPUID this vCPU was given (grown while the kernel answers E2BIG). */
export function getCpuid2(vcpu: Vcpu): CpuidEntry[] {
  for (let n = 64; n <= 4096; n *= 2) {
    const buf = new CStruct(kvmCpuid2, n * kvmCpuidEntry2.size);
    buf.setU32("nent", n);
    if (ioctlPtr(vcpu.fd, ioctls.KVM_GET_CPUID2, buf.bytes) < 0) {
      if (errno() === E2BIG) continue;
      throw new KvmError("KVM_GET_CPUID2", errno(), `vCPU ${vcpu.id}`);
    }
    return decodeCpuidEntries(buf.view, buf.u32("nent"));
  }
  throw new KvmError("KVM_GET_CPUID2", E2BIG, "more than 4096 entries");
}

/** The VM-wide state: in-kernel PIT, kvmclock, both PICs and the IOAPIC. The vCPUs must be paused. */
export function saveVmState(vm: Vm): VmKvmState {
  const chip = (id: number) => getBytes(vm.fd, "KVM_GET_IRQCHIP", kvmIrqchip.size, `chip ${id}`, (b) => new DataView(b.buffer).setUint32(0, id, true));
  return {
    pit: getBytes(vm.fd, "KVM_GET_PIT2", kvmPitState2.size, "PIT"),
    clock: getBytes(vm.fd, "KVM_GET_CLOCK", kvmClockData.size, "kvmclock"),
    picMaster: chip(IRQCHIP_PIC_MASTER),
    picSlave: chip(IRQCHIP_PIC_SLAVE),
    ioapic: chip(IRQCHIP_IOAPIC),
  };
}

/**
 * Restores the VM-wide state into a VM that has its irqchip and PIT. The clock is set with flags 0: the guest's
 * kvmclock resumes where it was saved, as if no time had passed while the VM was stored (Firecracker's default;
 * KVM_CLOCK_REALTIME would instead advance it by the wall time that passed).
 */
export function restoreVmState(vm: Vm, s: VmKvmState): void {
  checkSize("pit", s.pit, kvmPitState2.size);
  checkSize("clock", s.clock, kvmClockData.size);
  for (const [name, chip, id] of [["picMaster", s.picMaster, IRQCHIP_PIC_MASTER], ["picSlave", s.picSlave, IRQCHIP_PIC_SLAVE], ["ioapic", s.ioapic, IRQCHIP_IOAPIC]] as const) {
    checkSize(name, chip, kvmIrqchip.size);
    if (new DataView(chip.buffer, chip.byteOffset).getUint32(0, true) !== id) throw new Error(`${name} state names irqchip ${new DataView(chip.buffer, chip.byteOffset).getUint32(0, true)}, not ${id}`);
  }
  kvmIoctl(vm.fd, "KVM_SET_PIT2", s.pit, "PIT");
  const clock = s.clock.slice();
  new DataView(clock.buffer).setUint32(kvmClockData.offsets.flags, 0, true);
  kvmIoctl(vm.fd, "KVM_SET_CLOCK", clock, "kvmclock");
  kvmIoctl(vm.fd, "KVM_SET_IRQCHIP", s.picMaster, "PIC master");
  kvmIoctl(vm.fd, "KVM_SET_IRQCHIP", s.picSlave, "PIC slave");
  kvmIoctl(vm.fd, "KVM_SET_IRQCHIP", s.ioapic, "IOAPIC");
}

function checkSize(what: string, b: Uint8Array, size: number): void {
  if (b.length !== size) throw new Error(`${what} state is ${b.length} bytes; this host's KVM wants ${size}`);
}
