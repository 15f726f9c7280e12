/**
 * KVM ioctl request numbers, derived as <asm-generic/ioctl.h> does: dir << 30 | size << 16 | 'KVM' << 8 | nr.
 * Sizes come from the struct layouts, so a wrong layout also shows up as a wrong request number
 * (src/kvm/structs.test.ts checks both against the kernel headers).
 */
import * as s from "./structs.js";

const KVMIO = 0xae;
const NONE = 0;
const WRITE = 1;
const READ = 2;

function ioc(dir: number, nr: number, size: number): number {
  return ((dir << 30) >>> 0) + (size << 16) + (KVMIO << 8) + nr;
}
const io = (nr: number) => ioc(NONE, nr, 0);
const iow = (nr: number, size: number) => ioc(WRITE, nr, size);
const ior = (nr: number, size: number) => ioc(READ, nr, size);
const iowr = (nr: number, size: number) => ioc(READ | WRITE, nr, size);

export const KVM_GET_API_VERSION = io(0x00);
export const KVM_CREATE_VM = io(0x01);
export const KVM_GET_MSR_INDEX_LIST = iowr(0x02, s.kvmMsrList.size);
export const KVM_CHECK_EXTENSION = io(0x03);
export const KVM_GET_VCPU_MMAP_SIZE = io(0x04);
export const KVM_GET_SUPPORTED_CPUID = iowr(0x05, s.kvmCpuid2.size);

export const KVM_CREATE_VCPU = io(0x41);
export const KVM_GET_DIRTY_LOG = iow(0x42, s.kvmDirtyLog.size);
export const KVM_SET_USER_MEMORY_REGION = iow(0x46, s.kvmUserspaceMemoryRegion.size);
export const KVM_SET_TSS_ADDR = io(0x47);
export const KVM_SET_IDENTITY_MAP_ADDR = iow(0x48, 8);
export const KVM_CREATE_IRQCHIP = io(0x60);
export const KVM_IRQ_LINE = iow(0x61, s.kvmIrqLevel.size);
export const KVM_GET_IRQCHIP = iowr(0x62, s.kvmIrqchip.size);
export const KVM_SET_IRQCHIP = ior(0x63, s.kvmIrqchip.size);
export const KVM_IRQFD = iow(0x76, s.kvmIrqfd.size);
export const KVM_CREATE_PIT2 = iow(0x77, s.kvmPitConfig.size);
export const KVM_IOEVENTFD = iow(0x79, s.kvmIoeventfd.size);
export const KVM_SET_CLOCK = iow(0x7b, s.kvmClockData.size);
export const KVM_GET_CLOCK = ior(0x7c, s.kvmClockData.size);

export const KVM_RUN = io(0x80);
export const KVM_GET_REGS = ior(0x81, s.kvmRegs.size);
export const KVM_SET_REGS = iow(0x82, s.kvmRegs.size);
export const KVM_GET_SREGS = ior(0x83, s.kvmSregs.size);
export const KVM_SET_SREGS = iow(0x84, s.kvmSregs.size);
export const KVM_GET_MSRS = iowr(0x88, s.kvmMsrs.size);
export const KVM_SET_MSRS = iow(0x89, s.kvmMsrs.size);
export const KVM_GET_FPU = ior(0x8c, s.kvmFpu.size);
export const KVM_SET_FPU = iow(0x8d, s.kvmFpu.size);
export const KVM_GET_LAPIC = ior(0x8e, s.kvmLapicState.size);
export const KVM_SET_LAPIC = iow(0x8f, s.kvmLapicState.size);
export const KVM_SET_CPUID2 = iow(0x90, s.kvmCpuid2.size);
export const KVM_GET_MP_STATE = ior(0x98, s.kvmMpState.size);
export const KVM_SET_MP_STATE = iow(0x99, s.kvmMpState.size);
export const KVM_GET_CPUID2 = iowr(0x91, s.kvmCpuid2.size);
export const KVM_GET_PIT2 = ior(0x9f, s.kvmPitState2.size);
export const KVM_SET_PIT2 = iow(0xa0, s.kvmPitState2.size);
export const KVM_GET_VCPU_EVENTS = ior(0x9f, s.kvmVcpuEvents.size);
export const KVM_SET_VCPU_EVENTS = iow(0xa0, s.kvmVcpuEvents.size);
export const KVM_GET_DEBUGREGS = ior(0xa1, s.kvmDebugregs.size);
export const KVM_SET_DEBUGREGS = iow(0xa2, s.kvmDebugregs.size);
export const KVM_GET_XSAVE = ior(0xa4, s.kvmXsave.size);
export const KVM_SET_XSAVE = iow(0xa5, s.kvmXsave.size);
export const KVM_GET_XCRS = ior(0xa6, s.kvmXcrs.size);
export const KVM_SET_XCRS = iow(0xa7, s.kvmXcrs.size);
export const KVM_KVMCLOCK_CTRL = io(0xad);
/** The same struct as KVM_GET_XSAVE, but the buffer is KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2) bytes (api.rst 4.137). */
export const KVM_GET_XSAVE2 = ior(0xcf, s.kvmXsave.size);

/** Name → number, for error messages and the header check. */
export const IOCTL_NAMES: Readonly<Record<string, number>> = {
  KVM_GET_API_VERSION, KVM_CREATE_VM, KVM_GET_MSR_INDEX_LIST, KVM_CHECK_EXTENSION, KVM_GET_VCPU_MMAP_SIZE,
  KVM_GET_SUPPORTED_CPUID, KVM_CREATE_VCPU, KVM_SET_USER_MEMORY_REGION, KVM_SET_TSS_ADDR, KVM_SET_IDENTITY_MAP_ADDR,
  KVM_CREATE_IRQCHIP, KVM_IRQ_LINE, KVM_IRQFD, KVM_CREATE_PIT2, KVM_IOEVENTFD, KVM_RUN, KVM_GET_REGS, KVM_SET_REGS,
  KVM_GET_SREGS, KVM_SET_SREGS, KVM_GET_MSRS, KVM_SET_MSRS, KVM_GET_FPU, KVM_SET_FPU, KVM_GET_LAPIC, KVM_SET_LAPIC,
  KVM_SET_CPUID2, KVM_GET_MP_STATE, KVM_SET_MP_STATE, KVM_GET_DIRTY_LOG, KVM_GET_IRQCHIP, KVM_SET_IRQCHIP, KVM_SET_CLOCK,
  KVM_GET_CLOCK, KVM_GET_CPUID2, KVM_GET_PIT2, KVM_SET_PIT2, KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS, KVM_GET_DEBUGREGS,
  KVM_SET_DEBUGREGS, KVM_GET_XSAVE, KVM_SET_XSAVE, KVM_GET_XCRS, KVM_SET_XCRS, KVM_KVMCLOCK_CTRL, KVM_GET_XSAVE2,
};
