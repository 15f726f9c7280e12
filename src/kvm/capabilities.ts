/** KVM_CAP_* numbers from <linux/kvm.h> (checked by KVM_CHECK_EXTENSION). */
export const KVM_CAP = {
  IRQCHIP: 0,
  HLT: 1,
  USER_MEMORY: 3,
  SET_TSS_ADDR: 4,
  EXT_CPUID: 7,
  NR_VCPUS: 9,
  MP_STATE: 14,
  IRQ_ROUTING: 25,
  IRQFD: 32,
  PIT2: 33,
  PIT_STATE2: 35,
  IOEVENTFD: 36,
  ADJUST_CLOCK: 39,
  VCPU_EVENTS: 41,
  DEBUGREGS: 50,
  XSAVE: 55,
  XCRS: 56,
  SET_IDENTITY_MAP_ADDR: 37,
  MAX_VCPUS: 66,
  TSC_DEADLINE_TIMER: 72,
  KVMCLOCK_CTRL: 76,
  IMMEDIATE_EXIT: 136,
  XSAVE2: 208,
} as const;
export type KvmCapName = keyof typeof KVM_CAP;

/** What saving and restoring a VM needs (Firecracker checks the same set before a snapshot: vstate/kvm.rs). */
export const SNAPSHOT_CAPS: readonly KvmCapName[] = ["XSAVE", "XCRS", "VCPU_EVENTS", "ADJUST_CLOCK", "DEBUGREGS", "PIT_STATE2"];

/** What petasan cannot run without. */
export const REQUIRED_CAPS: readonly KvmCapName[] = [
  "IRQCHIP", "USER_MEMORY", "SET_TSS_ADDR", "EXT_CPUID", "MP_STATE", "IRQFD", "PIT2", "IOEVENTFD", "IMMEDIATE_EXIT",
];
