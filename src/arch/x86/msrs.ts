/**
 * MSRs a vCPU starts with (Intel SDM vol. 4 for the numbers): the syscall/sysenter MSRs cleared,
 * fast string operations on, MTRRs on with write-back as the default memory type.
 */
import type { MsrEntry } from "../../kvm/vcpu.js";

export const MSR = {
  IA32_SYSENTER_CS: 0x174,
  IA32_SYSENTER_ESP: 0x175,
  IA32_SYSENTER_EIP: 0x176,
  STAR: 0xc000_0081,
  LSTAR: 0xc000_0082,
  CSTAR: 0xc000_0083,
  SYSCALL_MASK: 0xc000_0084,
  KERNEL_GS_BASE: 0xc000_0102,
  IA32_TSC: 0x10,
  IA32_MISC_ENABLE: 0x1a0,
  MTRR_DEF_TYPE: 0x2ff,
} as const;

/** IA32_MISC_ENABLE bit 0: fast-string enable. */
const MISC_ENABLE_FAST_STRING = 1n;
/** MTRRdefType: bit 11 enables MTRRs, type 6 = write-back. */
const MTRR_ENABLE_WB = (1n << 11n) | 6n;

/** The boot MSRs, limited to those KVM says it can set (`supported`, from KVM_GET_MSR_INDEX_LIST). */
export function bootMsrs(supported: readonly number[]): MsrEntry[] {
  const wanted: MsrEntry[] = [
    { index: MSR.IA32_SYSENTER_CS, data: 0n },
    { index: MSR.IA32_SYSENTER_ESP, data: 0n },
    { index: MSR.IA32_SYSENTER_EIP, data: 0n },
    { index: MSR.STAR, data: 0n },
    { index: MSR.CSTAR, data: 0n },
    { index: MSR.KERNEL_GS_BASE, data: 0n },
    { index: MSR.SYSCALL_MASK, data: 0n },
    { index: MSR.LSTAR, data: 0n },
    { index: MSR.IA32_TSC, data: 0n },
    { index: MSR.IA32_MISC_ENABLE, data: MISC_ENABLE_FAST_STRING },
    { index: MSR.MTRR_DEF_TYPE, data: MTRR_ENABLE_WB },
  ];
  const have = new Set(supported);
  return wanted.filter((m) => have.has(m.index));
}
