/**
 * Serves vCPU exits posted to the device thread: decodes the exit in the vCPU's own kvm_run (shared memory,
 * zero copy), dispatches it to the PIO or MMIO bus, and wakes the vCPU. An access nothing claims is logged
 * through a per-call-site rate limiter, and nothing is kept per address: a guest can touch any number of them.
 */
import { KvmRunView, EXIT, IO_OUT } from "../../kvm/run.js";
import { dispatchMmio, dispatchPio } from "../io-dispatch.js";
import type { Bus } from "../../devices/bus.js";
import type { VcpuControl } from "../vcpu/control.js";
import { ExitMailbox } from "../vcpu/control.js";
import type { Logger } from "../logger.js";
import { LogRateLimiter } from "../../devices/log-rate-limit.js";

export interface ServedVcpu {
  id: number;
  control: VcpuControl;
  run: KvmRunView;
}

export class ExitServer {
  private readonly deviceFailureLog = new LogRateLimiter();
  private readonly unclaimedPioLog = new LogRateLimiter();
  private readonly unclaimedMmioLog = new LogRateLimiter();

  constructor(
    private readonly vcpus: readonly ServedVcpu[],
    private readonly pio: Bus,
    private readonly mmio: Bus,
    private readonly log: Logger,
  ) {}

  /** Serves every vCPU whose mailbox holds an exit; returns how many it served. */
  serveAll(): number {
    let served = 0;
    for (const v of this.vcpus) {
      if (v.control.mailbox !== ExitMailbox.Pending) continue;
      try {
        this.serve(v);
      } catch (e) {
        this.deviceFailureLog.log(this.log, "Error", () => `vCPU ${v.id}: device failed while serving an exit: ${(e as Error).stack ?? e}`);
      }
      v.control.completeExit();
      served++;
    }
    return served;
  }

  private serve(v: ServedVcpu): void {
    const run = v.run;
    if (run.exitReason === EXIT.IO) {
      if (!dispatchPio(run, this.pio)) this.unclaimedPioLog.log(this.log, "Debug", () => unclaimed(v.id, run.ioDirection === IO_OUT, "port", run.ioPort, run.ioSize));
    } else if (run.exitReason === EXIT.MMIO) {
      if (!dispatchMmio(run, this.mmio)) this.unclaimedMmioLog.log(this.log, "Warning", () => unclaimed(v.id, run.mmioIsWrite, "address", run.mmioAddr, run.mmioLen));
    }
  }
}

function unclaimed(vcpu: number, write: boolean, space: string, addr: number, size: number): string {
  return `vCPU ${vcpu}: ${size}-byte ${write ? "write to" : "read from"} ${space} 0x${addr.toString(16)} that no device claims${write ? "" : " (reads as all ones)"}`;
}
