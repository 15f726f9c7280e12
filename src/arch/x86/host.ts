/**
 * What the host's KVM can run. Where there is no VT-x/AMD-V (vmx/svm absent from the host's CPU flags, as
 * with a nested kvm_pvm), KVM runs guest ring-0 code in its instruction emulator, which lacks some
 * instructions and answers CPUID itself, so CPUID masking cannot hide them from the guest kernel:
 * kernel arguments do instead (see guest/README.md).
 */
import { readFileSync } from "node:fs";

/** Kernel arguments that keep a Linux guest off what KVM's emulator cannot run. */
export const EMULATED_RING0_KERNEL_ARGS = [
  "noxsave",
  // X86_FEATURE_* numbers (word * 32 + bit, arch/x86/include/asm/cpufeatures.h) of what the emulator lacks:
  // rdtscp 59, pclmulqdq 129, ssse3 137, cx16 141, sse4_1 147, sse4_2 148, popcnt 151, aes 153,
  // invpcid 298, smap 308, rdpid 534.
  "clearcpuid=59,129,137,141,147,148,151,153,298,308,534",
  "vdso32=0",
];

export interface HostVirtualization {
  /** True when the host CPU has VT-x or AMD-V, so guest ring 0 runs in hardware. */
  hardware: boolean;
}

export function detectHostVirtualization(cpuinfo = readCpuinfo()): HostVirtualization {
  const flags = /^flags\s*:(.*)$/m.exec(cpuinfo)?.[1].split(/\s+/) ?? [];
  return { hardware: flags.includes("vmx") || flags.includes("svm") };
}

function readCpuinfo(): string {
  try {
    return readFileSync("/proc/cpuinfo", "utf8");
  } catch {
    return "";
  }
}
