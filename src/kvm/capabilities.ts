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
  IOEVENTFD: 36,
  SET_IDENTITY_MAP_ADDR: 37,
  MAX_VCPUS: 66,
  TSC_DEADLINE_TIMER: 72,
  IMMEDIATE_EXIT: 136,
} as const;
export type KvmCapName = keyof typeof KVM_CAP;

/** What petasan cannot run without. */
export const REQUIRED_CAPS: readonly KvmCapName[] = [
  "IRQCHIP", "USER_MEMORY", "SET_TSS_ADDR", "EXT_CPUID", "MP_STATE", "IRQFD", "PIT2", "IOEVENTFD", "IMMEDIATE_EXIT",
];
