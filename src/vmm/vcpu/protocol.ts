/** What crosses the boundary between a vCPU thread and its controller. */

export interface VcpuWorkerData {
  id: number;
  fd: number;
  mmapSize: number;
  runAddr: bigint;
  control: SharedArrayBuffer;
  /** eventfd the device thread polls for posted exits. */
  exitEventFd: number;
  /** ExitDoorbell: the shared "device thread is awake" word, and whether threads poll at all. */
  exitDoorbell: SharedArrayBuffer;
  exitDoorbellPoll: boolean;
  /** Host CPUs this vCPU thread pins itself to before its first KVM_RUN (NUMA placement). */
  cpus?: number[];
  /** The vCPU thread's seccomp filter (compiled BPF), installed before its first KVM_RUN; absent: none. */
  seccomp?: Uint8Array;
}

export type VcpuWorkerMessage =
  | { kind: "started"; vcpu: number }
  | { kind: "stopped"; vcpu: number }
  | { kind: "fatal"; vcpu: number; reason: string; registers: string }
  | { kind: "system-event"; vcpu: number; type: number };
