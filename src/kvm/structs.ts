/**
 * Every KVM struct layout petasan uses, in one place. Offsets are those of <linux/kvm.h> and
 * <asm/kvm.h> on x86-64; src/kvm/structs.test.ts compiles a C program against the installed
 * headers and checks each size and offset listed here, field names being the C member paths.
 */

export interface StructLayout<F extends string> {
  /** The C type, e.g. "struct kvm_regs". */
  readonly cType: string;
  readonly size: number;
  readonly offsets: Readonly<Record<F, number>>;
}

function layout<F extends string>(cType: string, size: number, offsets: Record<F, number>): StructLayout<F> {
  return { cType, size, offsets };
}

const REG_NAMES = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags"] as const;
export type RegName = (typeof REG_NAMES)[number];

export const kvmRegs = layout("struct kvm_regs", 144, Object.fromEntries(REG_NAMES.map((n, i) => [n, i * 8])) as Record<RegName, number>);

export const kvmSegment = layout("struct kvm_segment", 24, {
  base: 0, limit: 8, selector: 12, type: 14, present: 15, dpl: 16, db: 17, s: 18, l: 19, g: 20, avl: 21, unusable: 22,
});

export const kvmDtable = layout("struct kvm_dtable", 16, { base: 0, limit: 8 });

export const SEGMENT_NAMES = ["cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt"] as const;
export type SegmentName = (typeof SEGMENT_NAMES)[number];

export const kvmSregs = layout("struct kvm_sregs", 312, {
  cs: 0, ds: 24, es: 48, fs: 72, gs: 96, ss: 120, tr: 144, ldt: 168,
  gdt: 192, idt: 208, cr0: 224, cr2: 232, cr3: 240, cr4: 248, cr8: 256, efer: 264, apic_base: 272, interrupt_bitmap: 280,
});

export const kvmFpu = layout("struct kvm_fpu", 416, {
  fpr: 0, fcw: 128, fsw: 130, ftwx: 132, last_opcode: 134, last_ip: 136, last_dp: 144, xmm: 152, mxcsr: 408,
});

export const kvmMsrs = layout("struct kvm_msrs", 8, { nmsrs: 0, entries: 8 });
export const kvmMsrEntry = layout("struct kvm_msr_entry", 16, { index: 0, data: 8 });
export const kvmMsrList = layout("struct kvm_msr_list", 4, { nmsrs: 0, indices: 4 });

export const kvmCpuid2 = layout("struct kvm_cpuid2", 8, { nent: 0, entries: 8 });
export const kvmCpuidEntry2 = layout("struct kvm_cpuid_entry2", 40, {
  function: 0, index: 4, flags: 8, eax: 12, ebx: 16, ecx: 20, edx: 24,
});

export const kvmLapicState = layout("struct kvm_lapic_state", 1024, { regs: 0 });
export const kvmMpState = layout("struct kvm_mp_state", 4, { mp_state: 0 });

export const kvmUserspaceMemoryRegion = layout("struct kvm_userspace_memory_region", 32, {
  slot: 0, flags: 4, guest_phys_addr: 8, memory_size: 16, userspace_addr: 24,
});

export const kvmIrqLevel = layout("struct kvm_irq_level", 8, { irq: 0, level: 4 });
export const kvmPitConfig = layout("struct kvm_pit_config", 64, { flags: 0 });
export const kvmIrqfd = layout("struct kvm_irqfd", 32, { fd: 0, gsi: 4, flags: 8, resamplefd: 12 });
export const kvmIoeventfd = layout("struct kvm_ioeventfd", 64, { datamatch: 0, addr: 8, len: 16, fd: 20, flags: 24 });

export const kvmRun = layout("struct kvm_run", 2352, {
  request_interrupt_window: 0,
  immediate_exit: 1,
  exit_reason: 8,
  ready_for_interrupt_injection: 12,
  if_flag: 13,
  flags: 14,
  cr8: 16,
  apic_base: 24,
  "io.direction": 32,
  "io.size": 33,
  "io.port": 34,
  "io.count": 36,
  "io.data_offset": 40,
  "mmio.phys_addr": 32,
  "mmio.data": 40,
  "mmio.len": 48,
  "mmio.is_write": 52,
  "fail_entry.hardware_entry_failure_reason": 32,
  "fail_entry.cpu": 40,
  "internal.suberror": 32,
  "internal.ndata": 36,
  "internal.data": 40,
  "system_event.type": 32,
  "system_event.ndata": 36,
  "system_event.data": 40,
});

// Snapshot state (api.rst 4.x for each ioctl). petasan keeps these as opaque bytes; the fields listed are
// the ones it reads or writes, and the sizes keep the ioctl numbers honest.
export const kvmXsave = layout("struct kvm_xsave", 4096, { region: 0 });
export const kvmXcrs = layout("struct kvm_xcrs", 392, { nr_xcrs: 0, flags: 4, xcrs: 8, padding: 264 });
export const kvmDebugregs = layout("struct kvm_debugregs", 128, { db: 0, dr6: 32, dr7: 40, flags: 48 });
export const kvmVcpuEvents = layout("struct kvm_vcpu_events", 64, { exception: 0, interrupt: 8, nmi: 12, sipi_vector: 16, flags: 20 });
export const kvmIrqchip = layout("struct kvm_irqchip", 520, { chip_id: 0, pad: 4, chip: 8 });
export const kvmPitState2 = layout("struct kvm_pit_state2", 112, { channels: 0, flags: 72 });
export const kvmClockData = layout("struct kvm_clock_data", 48, { clock: 0, flags: 8, realtime: 16, host_tsc: 24 });
export const kvmDirtyLog = layout("struct kvm_dirty_log", 16, { slot: 0, dirty_bitmap: 8 });

/** Every layout, for the header check. */
export const ALL_LAYOUTS: readonly StructLayout<string>[] = [
  kvmRegs, kvmSegment, kvmDtable, kvmSregs, kvmFpu, kvmMsrs, kvmMsrEntry, kvmMsrList, kvmCpuid2, kvmCpuidEntry2,
  kvmLapicState, kvmMpState, kvmUserspaceMemoryRegion, kvmIrqLevel, kvmPitConfig, kvmIrqfd, kvmIoeventfd, kvmRun,
  kvmXsave, kvmXcrs, kvmDebugregs, kvmVcpuEvents, kvmIrqchip, kvmPitState2, kvmClockData, kvmDirtyLog,
];
