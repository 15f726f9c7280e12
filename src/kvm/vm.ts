/** A KVM VM fd: memory slots, in-kernel irqchip and PIT, interrupt lines, irqfd/ioeventfd, vCPU creation. */
import { addressOf, close } from "../sys/libc.js";
import { kvmIoctl, type IoctlName } from "./ioctl-call.js";
import { CStruct } from "./cstruct.js";
import { kvmDirtyLog, kvmIoeventfd, kvmIrqfd, kvmIrqLevel, kvmPitConfig, kvmUserspaceMemoryRegion } from "./structs.js";
import { Vcpu } from "./vcpu.js";

/** KVM_PIT_SPEAKER_DUMMY: the PIT emulates the speaker port 0x61 in the kernel (api.rst 4.71). */
const KVM_PIT_SPEAKER_DUMMY = 1;
const KVM_IOEVENTFD_FLAG_DATAMATCH = 1 << 0;
const KVM_IOEVENTFD_FLAG_PIO = 1 << 1;
/** KVM_MEM_LOG_DIRTY_PAGES: KVM records guest writes to the slot in a bitmap (api.rst 4.35). */
export const KVM_MEM_LOG_DIRTY_PAGES = 1 << 0;
const PAGE = 4096;

export interface IoEventFdRegistration {
  fd: number;
  /** Guest address (MMIO) or port (PIO). */
  addr: number;
  /** Access width the event fires on: 1, 2, 4 or 8 bytes (0 = any, MMIO only). */
  length: number;
  pio?: boolean;
  /** Only writes of this value fire the event. */
  datamatch?: bigint;
}

export class Vm {
  constructor(readonly fd: number, readonly vcpuMmapSize: number) {}

  private ioctl(name: IoctlName, arg: Uint8Array | number, detail?: string): number {
    return kvmIoctl(this.fd, name, arg, detail);
  }

  /** Maps host memory at `hostAddr` as guest physical [guestAddr, guestAddr+size) in memory slot `slot`. */
  setUserMemoryRegion(slot: number, guestAddr: number, size: number, hostAddr: bigint, flags = 0): void {
    const r = new CStruct(kvmUserspaceMemoryRegion);
    r.setU32("slot", slot);
    r.setU32("flags", flags);
    r.setU64("guest_phys_addr", guestAddr);
    r.setU64("memory_size", size);
    r.setU64("userspace_addr", hostAddr);
    this.ioctl("KVM_SET_USER_MEMORY_REGION", r.bytes, `slot ${slot} at 0x${guestAddr.toString(16)}, ${size} bytes`);
  }

  /** Three pages of guest physical space that Intel VT-x needs for real-mode emulation (api.rst 4.48). */
  setTssAddr(addr: number): void {
    this.ioctl("KVM_SET_TSS_ADDR", addr);
  }

  /** One page for the EPT identity map used in unpaged real mode on Intel (api.rst 4.60). */
  setIdentityMapAddr(addr: number): void {
    const a = new BigUint64Array([BigInt(addr)]);
    this.ioctl("KVM_SET_IDENTITY_MAP_ADDR", new Uint8Array(a.buffer));
  }

  /** In-kernel PIC, IOAPIC and per-vCPU LAPICs, with the default GSI routing (GSIs 0-23 on the IOAPIC). */
  createIrqchip(): void {
    this.ioctl("KVM_CREATE_IRQCHIP", 0);
  }

  /** In-kernel i8254 PIT on ports 0x40-0x43 (and 0x61 with the dummy speaker). */
  createPit2(): void {
    const c = new CStruct(kvmPitConfig);
    c.setU32("flags", KVM_PIT_SPEAKER_DUMMY);
    this.ioctl("KVM_CREATE_PIT2", c.bytes);
  }

  /** Drives interrupt line `gsi` to `level` (1 = asserted). */
  setIrqLine(gsi: number, level: boolean): void {
    const l = new CStruct(kvmIrqLevel);
    l.setU32("irq", gsi);
    l.setU32("level", level ? 1 : 0);
    this.ioctl("KVM_IRQ_LINE", l.bytes, `GSI ${gsi}`);
  }

  /** Writes to eventfd `fd` inject an edge on `gsi` without leaving the kernel. */
  registerIrqfd(fd: number, gsi: number): void {
    const f = new CStruct(kvmIrqfd);
    f.setU32("fd", fd);
    f.setU32("gsi", gsi);
    this.ioctl("KVM_IRQFD", f.bytes, `GSI ${gsi}`);
  }

  /** Guest writes matching `reg` signal its eventfd in the kernel instead of exiting to userspace. */
  registerIoeventfd(reg: IoEventFdRegistration): void {
    const e = new CStruct(kvmIoeventfd);
    let flags = 0;
    if (reg.datamatch !== undefined) {
      flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
      e.setU64("datamatch", reg.datamatch);
    }
    if (reg.pio) flags |= KVM_IOEVENTFD_FLAG_PIO;
    e.setU64("addr", reg.addr);
    e.setU32("len", reg.length);
    e.setU32("fd", reg.fd);
    e.setU32("flags", flags);
    this.ioctl("KVM_IOEVENTFD", e.bytes, `${reg.pio ? "port" : "address"} 0x${reg.addr.toString(16)}`);
  }

  /**
   * KVM_GET_DIRTY_LOG (api.rst 4.8): one bit per 4 KiB page of slot `slot` (`size` bytes) written by the guest
   * since the last call, which also clears the log. The slot must have KVM_MEM_LOG_DIRTY_PAGES.
   */
  getDirtyLog(slot: number, size: number): BigUint64Array {
    const words = new BigUint64Array(Math.ceil(size / PAGE / 64));
    const bitmap = new Uint8Array(words.buffer);
    const d = new CStruct(kvmDirtyLog);
    d.setU32("slot", slot);
    d.setU64("dirty_bitmap", addressOf(bitmap));
    this.ioctl("KVM_GET_DIRTY_LOG", d.bytes, `slot ${slot}`);
    return words;
  }

  createVcpu(id: number): Vcpu {
    return new Vcpu(this.ioctl("KVM_CREATE_VCPU", id, `vCPU ${id}`), id, this.vcpuMmapSize);
  }

  close(): void {
    close(this.fd);
  }
}
