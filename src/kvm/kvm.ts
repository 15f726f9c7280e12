/** The KVM system fd (/dev/kvm): version, capabilities, supported CPUID and MSRs, VM creation. */
import { open, close, ioctlPtr, errno } from "../sys/libc.js";
import { kvmIoctl, type IoctlName } from "./ioctl-call.js";
import { KvmError, KvmCapabilityError } from "./errors.js";
import { KVM_CAP, REQUIRED_CAPS, type KvmCapName } from "./capabilities.js";
import { CStruct } from "./cstruct.js";
import { kvmCpuid2, kvmCpuidEntry2, kvmMsrList } from "./structs.js";
import * as ioctls from "./ioctls.js";
import { Vm } from "./vm.js";

const O_RDWR = 2;
const O_CLOEXEC = 0o2000000;
const E2BIG = 7;
/** KVM_GET_API_VERSION has answered 12 since Linux 2.6.22 (api.rst 4.1). */
const KVM_API_VERSION = 12;

export interface CpuidEntry {
  function: number;
  index: number;
  flags: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

export class Kvm {
  private constructor(readonly fd: number) {}

  /** Opens /dev/kvm and checks the API version and every capability petasan needs. */
  static open(path = "/dev/kvm"): Kvm {
    const fd = open(path, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0) {
      const e = errno();
      throw new KvmError(`open ${path}`, e, e === 2 ? "no KVM device: is the kvm module loaded and is virtualization enabled?" : undefined);
    }
    const kvm = new Kvm(fd);
    try {
      const version = kvm.apiVersion();
      if (version !== KVM_API_VERSION) throw new KvmCapabilityError(`KVM API version ${KVM_API_VERSION} (it reports ${version})`);
      for (const cap of REQUIRED_CAPS) kvm.requireCap(cap);
      return kvm;
    } catch (e) {
      kvm.close();
      throw e;
    }
  }

  ioctl(name: IoctlName, arg: Uint8Array | number, detail?: string): number {
    return kvmIoctl(this.fd, name, arg, detail);
  }

  apiVersion(): number {
    return this.ioctl("KVM_GET_API_VERSION", 0);
  }

  /** KVM_CHECK_EXTENSION: 0 when absent, else a capability-specific positive value. */
  checkCap(cap: KvmCapName): number {
    return this.ioctl("KVM_CHECK_EXTENSION", KVM_CAP[cap], `KVM_CAP_${cap}`);
  }

  requireCap(cap: KvmCapName): void {
    if (this.checkCap(cap) <= 0) throw new KvmCapabilityError(`KVM_CAP_${cap}`);
  }

  /** Size of the per-vCPU mmap area (struct kvm_run, then the PIO data page, ...). */
  vcpuMmapSize(): number {
    return this.ioctl("KVM_GET_VCPU_MMAP_SIZE", 0);
  }

  /** The most vCPUs one VM may have (KVM_CAP_MAX_VCPUS, falling back to NR_VCPUS as api.rst says). */
  maxVcpus(): number {
    return this.checkCap("MAX_VCPUS") || this.checkCap("NR_VCPUS") || 4;
  }

  /** KVM_GET_SUPPORTED_CPUID, growing the buffer while the kernel answers E2BIG. */
  supportedCpuid(): CpuidEntry[] {
    for (let n = 64; n <= 4096; n *= 2) {
      const buf = new CStruct(kvmCpuid2, n * kvmCpuidEntry2.size);
      buf.setU32("nent", n);
      const ret = ioctlPtr(this.fd, ioctls.KVM_GET_SUPPORTED_CPUID, buf.bytes);
      if (ret < 0) {
        if (errno() === E2BIG) continue;
        throw new KvmError("KVM_GET_SUPPORTED_CPUID", errno());
      }
      return decodeCpuidEntries(buf.view, buf.u32("nent"));
    }
    throw new KvmError("KVM_GET_SUPPORTED_CPUID", E2BIG, "more than 4096 entries");
  }

  /** KVM_GET_MSR_INDEX_LIST: the MSRs KVM can save and restore. */
  msrIndexList(): number[] {
    for (let n = 256; n <= 16384; n *= 2) {
      const buf = new CStruct(kvmMsrList, n * 4);
      buf.setU32("nmsrs", n);
      const ret = ioctlPtr(this.fd, ioctls.KVM_GET_MSR_INDEX_LIST, buf.bytes);
      if (ret < 0) {
        if (errno() === E2BIG) continue;
        throw new KvmError("KVM_GET_MSR_INDEX_LIST", errno());
      }
      const count = buf.u32("nmsrs");
      return Array.from({ length: count }, (_, i) => buf.u32("indices", i * 4));
    }
    throw new KvmError("KVM_GET_MSR_INDEX_LIST", E2BIG, "more than 16384 MSRs");
  }

  createVm(): Vm {
    return new Vm(this.ioctl("KVM_CREATE_VM", 0), this.vcpuMmapSize());
  }

  close(): void {
    close(this.fd);
  }
}

export function decodeCpuidEntries(view: DataView, count: number): CpuidEntry[] {
  const base = kvmCpuid2.offsets.entries;
  const o = kvmCpuidEntry2.offsets;
  const entries: CpuidEntry[] = [];
  for (let i = 0; i < count; i++) {
    const at = base + i * kvmCpuidEntry2.size;
    const get = (off: number) => view.getUint32(at + off, true);
    entries.push({ function: get(o.function), index: get(o.index), flags: get(o.flags), eax: get(o.eax), ebx: get(o.ebx), ecx: get(o.ecx), edx: get(o.edx) });
  }
  return entries;
}
