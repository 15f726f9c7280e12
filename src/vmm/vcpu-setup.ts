/**
 * Puts vCPUs in the state a kernel's entry point expects: CPUID, MSRs, FPU and LAPIC for every vCPU;
 * registers and segments from the loader's BootEntry for the boot vCPU (application processors wait for
 * INIT/SIPI from the in-kernel LAPIC, as on real hardware).
 */
import type { Kvm } from "../kvm/kvm.js";
import type { Vcpu, Sregs } from "../kvm/vcpu.js";
import type { BootEntry } from "../boot/loader.js";
import { vcpuCpuid, type CpuTemplate } from "../arch/x86/cpuid.js";
import { detectHostVirtualization } from "../arch/x86/host.js";
import { bootMsrs } from "../arch/x86/msrs.js";
import { BOOT_FPU } from "../arch/x86/fpu.js";
import { withLegacyLints } from "../arch/x86/lapic.js";

// Control register and EFER bits (Intel SDM vol. 3A, 2.5 and 2.2.1).
const CR0_PE = 1n << 0n;
const CR0_ET = 1n << 4n;
const CR0_PG = 1n << 31n;
const CR4_PAE = 1n << 5n;
const EFER_LME = 1n << 8n;
const EFER_LMA = 1n << 10n;

export interface HostCpuFacts {
  supportedCpuid: ReturnType<Kvm["supportedCpuid"]>;
  msrIndexList: number[];
  /** VT-x/AMD-V present, so guest ring 0 (and its hypercalls) run in hardware. */
  hardwareVirtualization: boolean;
}

export function hostCpuFacts(kvm: Kvm): HostCpuFacts {
  return { supportedCpuid: kvm.supportedCpuid(), msrIndexList: kvm.msrIndexList(), hardwareVirtualization: detectHostVirtualization().hardware };
}

/** CPUID, MSRs, FPU and LAPIC LINT wiring, for every vCPU. */
export function configureVcpu(vcpu: Vcpu, host: HostCpuFacts, vcpuCount: number, template: CpuTemplate): void {
  vcpu.setCpuid2(vcpuCpuid(host.supportedCpuid, { vcpuId: vcpu.id, vcpuCount, template, hypercalls: host.hardwareVirtualization }));
  vcpu.setMsrs(bootMsrs(host.msrIndexList));
  vcpu.setFpu(BOOT_FPU);
  vcpu.setLapic(withLegacyLints(vcpu.getLapic()));
}

/** Registers and segments of the boot vCPU at the kernel's entry point. */
export function setBootRegisters(vcpu: Vcpu, entry: BootEntry): void {
  const current = vcpu.getSregs();
  const sregs: Sregs = {
    ...current,
    segments: { ...entry.segments },
    gdt: entry.gdt,
    idt: entry.idt,
  };
  switch (entry.mode) {
    case "long64":
      sregs.cr0 = CR0_PE | CR0_ET | CR0_PG;
      sregs.cr3 = BigInt(entry.cr3 ?? 0);
      sregs.cr4 = CR4_PAE;
      sregs.efer = EFER_LME | EFER_LMA;
      break;
    case "protected32":
      sregs.cr0 = CR0_PE | CR0_ET;
      sregs.cr3 = 0n;
      sregs.cr4 = 0n;
      sregs.efer = 0n;
      break;
    case "real16":
      sregs.cr0 = CR0_ET;
      sregs.cr3 = 0n;
      sregs.cr4 = 0n;
      sregs.efer = 0n;
      break;
  }
  vcpu.setSregs(sregs);
  vcpu.setRegs({ rip: BigInt(entry.rip), rsp: BigInt(entry.rsp), rbp: BigInt(entry.rsp), rsi: BigInt(entry.rsi), rbx: BigInt(entry.rbx), rflags: 2n });
}
