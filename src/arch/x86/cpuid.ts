/**
 * The CPUID a vCPU sees: KVM_GET_SUPPORTED_CPUID, narrowed by a CPU template, with per-vCPU APIC
 * ids, a topology consistent with the vCPU count, and KVM's paravirt signature leaves.
 * Leaf numbers and bits: Intel SDM vol. 2A "CPUID", AMD APM vol. 3 appendix E, Documentation/virt/kvm/x86/cpuid.rst.
 */
import type { CpuidEntry } from "../../kvm/kvm.js";

export type CpuTemplate = "host" | "minimal";
export const CPU_TEMPLATES: readonly CpuTemplate[] = ["host", "minimal"];

export class CpuidError extends Error {
  override readonly name = "CpuidError";
}

/** Leaf 1 EDX bits of the x86-64 baseline (what QEMU's qemu64 model offers). */
const BASELINE_LEAF1_EDX =
  bits(0 /* fpu */, 1 /* vme */, 2 /* de */, 3 /* pse */, 4 /* tsc */, 5 /* msr */, 6 /* pae */, 7 /* mce */, 8 /* cx8 */,
    9 /* apic */, 11 /* sep */, 12 /* mtrr */, 13 /* pge */, 14 /* mca */, 15 /* cmov */, 16 /* pat */, 17 /* pse36 */,
    19 /* clflush */, 23 /* mmx */, 24 /* fxsr */, 25 /* sse */, 26 /* sse2 */, 28 /* htt: kept only when SMP */);
/** Leaf 1 ECX bits of the baseline: sse3, x2apic (KVM's LAPIC supports it), hypervisor. */
const BASELINE_LEAF1_ECX = bits(0 /* sse3 */, 21 /* x2apic */, 31 /* hypervisor */);
/** Leaf 0x80000001: lahf_lm in ECX; syscall, nx, lm in EDX. */
const BASELINE_EXT1_ECX = bits(0);
const BASELINE_EXT1_EDX = bits(11, 20, 29);

const LEAF1_ECX_HYPERVISOR = 1 << 31;
const LEAF1_EDX_HTT = 1 << 28;
/** KVM's signature leaf (cpuid.rst): "KVMKVMKVM\0\0\0" in EBX, ECX, EDX. */
const KVM_SIGNATURE_LEAF = 0x4000_0000;
const KVM_SIGNATURE = [0x4b4d564b, 0x564b4d56, 0x0000004d];
const KVM_FEATURES_LEAF = 0x4000_0001;
/**
 * KVM paravirt features that work by hypercall (Documentation/virt/kvm/x86/cpuid.rst, hypercalls.rst):
 * PV_UNHALT (KVM_HC_KICK_CPU), PV_SEND_IPI, PV_SCHED_YIELD, HC_MAP_GPA_RANGE.
 */
const KVM_HYPERCALL_FEATURES = bits(7, 11, 13, 16);

function bits(...n: number[]): number {
  return n.reduce((m, b) => (m | (1 << b)) >>> 0, 0);
}

/** Number of bits needed to number `count` things (x2APIC topology shifts, leaf 0xB). */
function idBits(count: number): number {
  return count <= 1 ? 0 : 32 - Math.clz32(count - 1);
}

export interface CpuidOptions {
  vcpuId: number;
  vcpuCount: number;
  template: CpuTemplate;
  /**
   * False where KVM emulates guest ring 0 (no VT-x/AMD-V): there a `vmcall` from the guest kernel never
   * completes (KVM patches it to the vendor's instruction and re-runs it in its emulator, forever), so
   * the paravirt features that need hypercalls are hidden. Measured: an SMP Linux guest hung in
   * kvm_hypercall4 (PV send-IPI) until they were.
   */
  hypercalls: boolean;
}

/** The CPUID entries for one vCPU. Does not modify `supported`. */
export function vcpuCpuid(supported: readonly CpuidEntry[], opts: CpuidOptions): CpuidEntry[] {
  const { vcpuId, vcpuCount, template, hypercalls } = opts;
  if (!CPU_TEMPLATES.includes(template)) throw new CpuidError(`unknown CPU template "${template}" (expected one of ${CPU_TEMPLATES.join(", ")})`);
  const out: CpuidEntry[] = [];
  for (const src of supported) {
    const e = { ...src };
    switch (e.function) {
      case 0x1:
        // EBX[31:24] initial APIC id, [23:16] logical processors per package, [15:8] CLFLUSH line size in qwords.
        e.ebx = ((vcpuId << 24) | (Math.min(vcpuCount, 255) << 16) | (e.ebx & 0xff00) | (e.ebx & 0xff)) >>> 0;
        e.ecx = (e.ecx | LEAF1_ECX_HYPERVISOR) >>> 0;
        e.edx = vcpuCount > 1 ? (e.edx | LEAF1_EDX_HTT) >>> 0 : (e.edx & ~LEAF1_EDX_HTT) >>> 0;
        if (template === "minimal") {
          e.ecx = (e.ecx & BASELINE_LEAF1_ECX) >>> 0;
          e.edx = (e.edx & (BASELINE_LEAF1_EDX | (vcpuCount > 1 ? LEAF1_EDX_HTT : 0))) >>> 0;
        }
        break;
      case 0x4:
        // EAX[31:26]: cores per package - 1; [25:14]: logical processors sharing this cache - 1 (one core per vCPU).
        if ((e.eax & 0x1f) !== 0) e.eax = ((e.eax & 0x3fff) | ((vcpuCount - 1) << 26)) >>> 0;
        break;
      case 0x6: // thermal and power management: nothing a guest can use
        e.eax = e.ebx = e.ecx = e.edx = 0;
        break;
      case 0x7:
        if (template === "minimal") e.eax = e.ebx = e.ecx = e.edx = 0;
        break;
      case 0xa: // architectural PMU: not offered (as Firecracker)
        e.eax = e.ebx = e.ecx = e.edx = 0;
        break;
      case 0xb: {
        // x2APIC topology: level 0 = SMT (one thread per core), level 1 = core (all vCPUs in one package).
        const level = e.index;
        e.edx = vcpuId;
        if (level === 0) { e.eax = 0; e.ebx = 1; e.ecx = (1 << 8) | level; }
        else if (level === 1) { e.eax = idBits(vcpuCount); e.ebx = vcpuCount; e.ecx = (2 << 8) | level; }
        else { e.eax = 0; e.ebx = 0; e.ecx = level; }
        break;
      }
      case 0xd:
        if (template === "minimal") continue; // no XSAVE in the baseline
        break;
      case 0x8000_0001:
        if (template === "minimal") {
          e.ecx = (e.ecx & BASELINE_EXT1_ECX) >>> 0;
          e.edx = (e.edx & BASELINE_EXT1_EDX) >>> 0;
        }
        break;
      case 0x8000_0008:
        // AMD: ECX[7:0] cores per package - 1, ECX[15:12] APIC id bits for the core (AMD APM vol. 3, E.4.7).
        e.ecx = ((e.ecx & ~0xf0ff) | (idBits(vcpuCount) << 12) | (vcpuCount - 1)) >>> 0;
        break;
      case 0x8000_001e:
        // AMD extended APIC id / compute unit (E.4.15): one core per vCPU, one thread per core, node 0.
        e.eax = vcpuId;
        e.ebx = vcpuId & 0xff;
        e.ecx = 0;
        break;
      case KVM_SIGNATURE_LEAF:
        e.eax = Math.max(e.eax, KVM_FEATURES_LEAF);
        [e.ebx, e.ecx, e.edx] = KVM_SIGNATURE;
        break;
      case KVM_FEATURES_LEAF:
        if (!hypercalls) e.eax = (e.eax & ~KVM_HYPERCALL_FEATURES) >>> 0;
        break;
    }
    out.push(e);
  }
  if (!out.some((e) => e.function === KVM_SIGNATURE_LEAF)) {
    out.push({ function: KVM_SIGNATURE_LEAF, index: 0, flags: 0, eax: KVM_FEATURES_LEAF, ebx: KVM_SIGNATURE[0], ecx: KVM_SIGNATURE[1], edx: KVM_SIGNATURE[2] });
  }
  return out;
}
