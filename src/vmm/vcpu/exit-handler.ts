/**
 * What a vCPU thread does with one KVM exit, as a pure function of kvm_run and the thread's services, so it is
 * testable without KVM (Firecracker's Vcpu::run_emulation / handle_kvm_exit): count it, serve a register access
 * here or hand it to the device thread, and say whether the loop goes on, the VM ends with a fault, or the guest
 * asked for a system event (reset, power-off).
 */
import { EXIT, EXIT_NAMES, IO_OUT, type KvmRunView } from "../../kvm/run.js";
import { VcpuControl } from "./control.js";

export type ExitOutcome = { kind: "continue" } | { kind: "fatal"; reason: string } | { kind: "system-event"; type: number };

/** The loop's common answer, allocated once (this runs on every exit). */
const CONTINUE: ExitOutcome = { kind: "continue" };

/** KVM_INTERNAL_ERROR_EMULATION: most often met on hosts whose KVM emulates guest ring 0 (see README). */
const EMULATION_FAILED_HINT =
  " (KVM could not emulate an instruction; without VT-x/AMD-V, KVM emulates all guest ring-0 code and lacks some instructions: see the README's section on such hosts)";

export interface ExitServices {
  /** Exit counters (VcpuControl.bump by slot). */
  counters: Pick<VcpuControl, "bump">;
  /** Device registers served on this thread; false: not this thread's to serve. */
  servePio(run: KvmRunView): boolean;
  serveMmio(run: KvmRunView): boolean;
  /** Hands the exit to the device thread and waits until it is served. */
  handOver(): void;
}

const slot = {
  ioIn: VcpuControl.slot("io_in"), ioOut: VcpuControl.slot("io_out"), mmioRead: VcpuControl.slot("mmio_read"),
  mmioWrite: VcpuControl.slot("mmio_write"), handedOver: VcpuControl.slot("handed_over"), intr: VcpuControl.slot("intr"),
  hlt: VcpuControl.slot("hlt"), other: VcpuControl.slot("other"),
};

export function handleExit(run: KvmRunView, s: ExitServices): ExitOutcome {
  switch (run.exitReason) {
    case EXIT.IO:
      s.counters.bump(run.ioDirection === IO_OUT ? slot.ioOut : slot.ioIn);
      if (!s.servePio(run)) handOver(s);
      return CONTINUE;
    case EXIT.MMIO:
      s.counters.bump(run.mmioIsWrite ? slot.mmioWrite : slot.mmioRead);
      if (!s.serveMmio(run)) handOver(s);
      return CONTINUE;
    case EXIT.INTR:
      s.counters.bump(slot.intr);
      return CONTINUE;
    case EXIT.HLT:
      // The in-kernel LAPIC keeps HLT in the kernel; counted in case a KVM reports one anyway, then re-entered.
      s.counters.bump(slot.hlt);
      return CONTINUE;
    case EXIT.SHUTDOWN:
      return { kind: "fatal", reason: "the guest shut the vCPU down (triple fault: an exception while delivering a double fault)" };
    case EXIT.FAIL_ENTRY:
      return { kind: "fatal", reason: `KVM could not enter the guest (hardware entry failure reason 0x${run.failEntryReason.toString(16)})` };
    case EXIT.INTERNAL_ERROR:
      return {
        kind: "fatal",
        reason: `KVM internal error, suberror ${run.internalSuberror}${run.internalSuberror === 1 ? EMULATION_FAILED_HINT : ""}; data: ${run.internalData().map((d) => "0x" + d.toString(16)).join(" ")}`,
      };
    case EXIT.SYSTEM_EVENT:
      return { kind: "system-event", type: run.systemEventType };
    default:
      s.counters.bump(slot.other);
      return { kind: "fatal", reason: `unexpected KVM exit ${EXIT_NAMES[run.exitReason] ?? run.exitReason}` };
  }
}

function handOver(s: ExitServices): void {
  s.counters.bump(slot.handedOver);
  s.handOver();
}
