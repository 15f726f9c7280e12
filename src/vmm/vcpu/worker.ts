/**
 * A vCPU thread: loops on KVM_RUN. Device register accesses are served here, from the register files the device
 * thread owns (registers.ts); the few that are the device thread's (registers.ts says which) are posted to it, and
 * it serves them in this vCPU's kvm_run and wakes us. Commands (pause, stop) arrive through VcpuControl plus a kick:
 * immediate_exit + a signal.
 */
import { parentPort } from "node:worker_threads";
import { jobData } from "../job-data.js";
import { ioctlInt, errno, pthreadSelf, strerror } from "../../sys/libc.js";
import { signalEventFd } from "../../sys/eventfd.js";
import { EINTR, EAGAIN } from "../../sys/errors.js";
import { KVM_RUN } from "../../kvm/ioctls.js";
import { KvmRunView } from "../../kvm/run.js";
import { handleExit, type ExitServices } from "./exit-handler.js";
import { Vcpu } from "../../kvm/vcpu.js";
import { VcpuCommand, VcpuControl, VcpuState } from "./control.js";
import { registerDump } from "./register-dump.js";
import { pinThisThread } from "../../sys/affinity.js";
import type { VcpuWorkerData, VcpuWorkerMessage } from "./protocol.js";
import { VcpuRegisters } from "./registers.js";
import { loadUserDevices } from "../device-thread/user-devices.js";
import { lockDownThread } from "../seccomp/thread-lockdown.js";

const data = await jobData<VcpuWorkerData>();
const control = new VcpuControl(data.control);
const vcpu = new Vcpu(data.fd, data.id, data.mmapSize, data.runAddr);
const run = new KvmRunView(data.runAddr, data.mmapSize);
const post = (m: VcpuWorkerMessage) => parentPort!.postMessage(m);
/** The user's fast-path devices' modules, imported before the run loop (the loop cannot await). */
const userDevices = await loadUserDevices(data.registers.userDevices);
/**
 * Built when the thread is first let run the guest, not as it starts: it starts beside the device thread, which
 * describes the virtio devices in their register files (type, features, queues) before it says ready, and holds
 * the vCPUs paused until then. Built before the thread's seccomp filter, so a user device's factory runs under the
 * same rules as on the device thread.
 */
let deviceRegisters: VcpuRegisters | undefined;
/** The guest pulsed the reset line through the i8042 on this thread: the machine resets, so this vCPU runs no more. */
let resetRequested = false;
const registers = () => deviceRegisters!;

const intrSlot = VcpuControl.slot("intr");

/** What handleExit uses: this thread's counters and registers, and the hand-over to the device thread. */
const services: ExitServices = {
  counters: control,
  servePio: (r) => registers().servePio(r),
  serveMmio: (r) => registers().serveMmio(r),
  // The device thread serves the exit in our kvm_run (registers.ts says which) and wakes us.
  handOver: () => control.postExitAndWait(() => signalEventFd(data.exitEventFd)),
};

/** An error as one line (a VM's end is said in one line). */
function oneLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).replace(/\s*\n\s*/g, " ");
}

function fatal(reason: string): void {
  post({ kind: "fatal", vcpu: data.id, reason, registers: registerDump(vcpu) });
}

/**
 * An IO or MMIO exit is complete (the IN's value in its register, RIP past the instruction) only once KVM_RUN is
 * entered again (api.rst, KVM_EXIT_IO/KVM_EXIT_MMIO note). A paused vCPU's state may be saved in a snapshot, so
 * pausing re-enters with immediate_exit set: KVM finishes the operation and returns EINTR without running the guest.
 */
function completePendingExit(): void {
  run.immediateExit = true;
  ioctlInt(data.fd, KVM_RUN, 0);
  run.immediateExit = false;
}

/**
 * Before the guest's first instruction: the device registers this thread serves, then the thread's seccomp filter
 * (Firecracker installs the vCPU filter before its run loop runs the guest). False when the registers could not be
 * set up (a user device's factory failed here): the VM ends with that line.
 */
function prepareToRun(): boolean {
  try {
    deviceRegisters = new VcpuRegisters(data.registers, `vcpu${data.id}`, { onReset: () => { resetRequested = true; }, userDevices });
  } catch (e) {
    fatal(`the device registers of this vCPU thread could not be set up: ${oneLine(e)}`);
    return false;
  }
  lockDownThread("vcpu", `petasan-vcpu${data.id}`, data.seccomp);
  return true;
}

function runLoop(): void {
  // NUMA placement: the thread runs on the CPUs next to the node its guest RAM is bound to.
  if (data.cpus) pinThisThread(data.cpus);
  control.pthreadId = BigInt(pthreadSelf());
  control.state = VcpuState.Running;
  post({ kind: "started", vcpu: data.id });
  for (;;) {
    const cmd = control.command;
    if (cmd === VcpuCommand.Stop) return;
    if (cmd === VcpuCommand.Pause) {
      completePendingExit();
      control.state = VcpuState.Paused;
      while (control.command === VcpuCommand.Pause) control.waitWhileCommand(VcpuCommand.Pause);
      control.state = VcpuState.Running;
      continue;
    }
    if (!deviceRegisters && !prepareToRun()) return;
    if (ioctlInt(data.fd, KVM_RUN, 0) < 0) {
      const e = errno();
      if (e === EINTR || e === EAGAIN) {
        run.immediateExit = false;
        control.bump(intrSlot);
        continue;
      }
      fatal(`KVM_RUN failed: ${strerror(e)} (errno ${e})`);
      return;
    }
    const outcome = handleExit(run, services);
    if (resetRequested) {
      // Said once; a guest looping on the reset command would otherwise send one message per exit until stopped.
      post({ kind: "guest-reset", vcpu: data.id });
      return;
    }
    if (outcome.kind === "continue") continue;
    if (outcome.kind === "fatal") fatal(outcome.reason);
    else post({ kind: "system-event", vcpu: data.id, type: outcome.type });
    return;
  }
}

try {
  runLoop();
} catch (e) {
  fatal(`vCPU thread failed: ${oneLine(e)}`);
} finally {
  control.state = VcpuState.Stopped;
  post({ kind: "stopped", vcpu: data.id });
}
