/**
 * The controlling side of one vCPU thread: start it, and get it out of KVM_RUN when it must pause or stop.
 * A thread blocked in KVM_RUN hears nothing but a signal: set kvm_run.immediate_exit (so a signal that
 * lands just before KVM_RUN is not lost), then pthread_kill the thread. The signal must have a handler, or it
 * would kill the process: Node installs one (process-wide) while the main thread listens for SIGUSR2.
 * Several VMs share that one handler: each vCPU thread holds a reference while it runs, and the last one
 * to end removes it, so a process embedding petasan gets SIGUSR2's default back once no VM runs.
 */
import { Worker } from "node:worker_threads";
import { pthreadKill } from "../../sys/libc.js";
import { threadCpuTimeNs } from "../../sys/thread-cpu-time.js";
import { KvmRunView } from "../../kvm/run.js";
import type { Vcpu } from "../../kvm/vcpu.js";
import { VcpuCommand, VcpuControl, VcpuState } from "./control.js";
import type { VcpuWorkerData, VcpuWorkerMessage } from "./protocol.js";
import type { VcpuRegisterData } from "../register-states.js";
import { startWorker } from "../warm-workers.js";

const KICK_SIGNAL = 12; // SIGUSR2 on x86-64 Linux; SIGUSR1 belongs to Node's inspector
let kickHandlerUsers = 0;
const ignoreKick = () => {};

/**
 * Takes a reference on the no-op SIGUSR2 handler that makes kicks interrupt KVM_RUN instead of killing the
 * process (installed by the first user); the returned function drops it (idempotent).
 */
export function acquireKickHandler(): () => void {
  if (kickHandlerUsers++ === 0) process.on("SIGUSR2", ignoreKick);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--kickHandlerUsers === 0) process.off("SIGUSR2", ignoreKick);
  };
}

/** How many vCPU threads hold the kick handler (for tests). */
export function kickHandlerUserCount(): number {
  return kickHandlerUsers;
}

export class VcpuHandle {
  readonly control = new VcpuControl();
  private readonly run: KvmRunView;
  private worker?: Worker;
  private releaseKickHandler?: () => void;

  /** `cpus`: the host CPUs the vCPU thread is pinned to (all, when undefined); `seccomp`: its filter (none, when undefined). */
  constructor(readonly vcpu: Vcpu, private readonly exitEventFd: number, private readonly placement: { cpus?: readonly number[]; seccomp?: Uint8Array } = {}) {
    this.run = new KvmRunView(vcpu.runAddr, vcpu.mmapSize);
  }

  /**
   * Starts the thread, serving device registers from `registers`; `onMessage` hears
   * started/stopped/fatal/system-event/guest-reset.
   */
  start(registers: VcpuRegisterData, { onMessage, onError }: { onMessage: (m: VcpuWorkerMessage) => void; onError: (e: Error) => void }): void {
    this.releaseKickHandler = acquireKickHandler();
    const data: VcpuWorkerData = {
      id: this.vcpu.id, fd: this.vcpu.fd, mmapSize: this.vcpu.mmapSize, runAddr: this.vcpu.runAddr, registers,
      control: this.control.buffer, exitEventFd: this.exitEventFd, ...(this.placement.cpus && { cpus: [...this.placement.cpus] }), seccomp: this.placement.seccomp,
    };
    this.worker = startWorker("vcpu", data, { name: `vcpu${this.vcpu.id}` });
    this.worker.on("message", onMessage);
    this.worker.on("error", onError);
  }

  /** Gets the vCPU out of KVM_RUN so it reads its command word. */
  kick(): void {
    this.run.immediateExit = true;
    const tid = this.control.pthreadId;
    if (tid !== 0n && this.control.state !== VcpuState.Stopped) pthreadKill(tid, KICK_SIGNAL);
    this.control.count("kicks");
  }

  /** CPU time this vCPU's thread has used (ns), or undefined before it started or once it has stopped. */
  cpuTimeNs(): number | undefined {
    const tid = this.control.pthreadId;
    // A stopped thread's pthread_t may already be gone: ask only while it lives (as kick() does). Node joins
    // a worker's thread on this (the main) thread, so one seen not Stopped here is not joined before we return.
    if (tid === 0n || this.control.state === VcpuState.Stopped) return undefined;
    return threadCpuTimeNs(tid);
  }

  async pause(timeoutMs = 5000): Promise<void> {
    this.control.command = VcpuCommand.Pause;
    this.kick();
    if (!(await this.control.untilState(VcpuState.Paused, timeoutMs))) throw new Error(`vCPU ${this.vcpu.id} did not pause within ${timeoutMs} ms`);
  }

  resume(): void {
    this.control.command = VcpuCommand.Run;
  }

  /** Asks the thread to leave its loop and waits for it to end. */
  async stop(timeoutMs = 5000): Promise<void> {
    this.control.command = VcpuCommand.Stop;
    if (!this.worker) return;
    this.kick();
    // A vCPU waiting on the device thread is released by it; one in KVM_RUN by the kick. Retry the kick
    // in case the signal landed between the command check and KVM_RUN's entry.
    const deadline = Date.now() + timeoutMs;
    while (!(await this.control.untilState(VcpuState.Stopped, 50))) {
      if (Date.now() > deadline) return this.terminate();
      this.kick();
    }
    await this.terminate();
  }

  private async terminate(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
    // The thread is gone, so no kick can be in flight to it: the handler may go.
    this.releaseKickHandler?.();
  }
}
