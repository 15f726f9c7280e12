/** What crosses the boundary between a vCPU thread and its controller. */
import type { VcpuRegisterData } from "../register-states.js";

export interface VcpuWorkerData {
  id: number;
  fd: number;
  mmapSize: number;
  runAddr: bigint;
  /** The devices' register files, served on this thread. */
  registers: VcpuRegisterData;
  control: SharedArrayBuffer;
  /** eventfd the device thread polls for posted exits. */
  exitEventFd: number;
  /** Host CPUs this vCPU thread pins itself to before its first KVM_RUN (NUMA placement). */
  cpus?: number[];
  /** The vCPU thread's seccomp filter (compiled BPF), installed before its first KVM_RUN; absent: none. */
  seccomp?: Uint8Array;
}

export type VcpuWorkerMessage =
  | { kind: "started"; vcpu: number }
  | { kind: "stopped"; vcpu: number }
  | { kind: "fatal"; vcpu: number; reason: string; registers: string }
  | { kind: "system-event"; vcpu: number; type: number }
  /** The guest pulsed the reset line through the i8042, served on this thread. */
  | { kind: "guest-reset"; vcpu: number };
