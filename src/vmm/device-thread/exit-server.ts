/**
 * Serves vCPU exits posted to the device thread: decodes the exit in the vCPU's own kvm_run (shared memory,
 * zero copy), dispatches it to the PIO or MMIO bus, and wakes the vCPU. An access nothing claims is logged,
 * a few times per address.
 */
import { KvmRunView, EXIT, IO_OUT } from "../../kvm/run.js";
import { dispatchMmio, dispatchPio } from "../io-dispatch.js";
import type { Bus } from "../../devices/bus.js";
import type { VcpuControl } from "../vcpu/control.js";
import { ExitMailbox } from "../vcpu/control.js";
import type { Logger } from "../logger.js";

export interface ServedVcpu {
  id: number;
  control: VcpuControl;
  run: KvmRunView;
}

const UNCLAIMED_REPORTS_PER_ADDRESS = 3;

export class ExitServer {
  private readonly unclaimedSeen = new Map<string, number>();

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
        this.log("Error", `vCPU ${v.id}: device failed while serving an exit: ${(e as Error).stack ?? e}`);
      }
      v.control.completeExit();
      served++;
    }
    return served;
  }

  private serve(v: ServedVcpu): void {
    const run = v.run;
    if (run.exitReason === EXIT.IO) {
      if (!dispatchPio(run, this.pio)) this.unclaimed("Debug", v.id, run.ioDirection === IO_OUT ? "write to" : "read from", "port", run.ioPort, run.ioSize);
    } else if (run.exitReason === EXIT.MMIO) {
      if (!dispatchMmio(run, this.mmio)) this.unclaimed("Warning", v.id, run.mmioIsWrite ? "write to" : "read from", "address", run.mmioAddr, run.mmioLen);
    }
  }

  private unclaimed(level: "Debug" | "Warning", vcpu: number, what: string, space: string, addr: number, size: number): void {
    const key = `${space}${addr}`;
    const seen = this.unclaimedSeen.get(key) ?? 0;
    if (seen >= UNCLAIMED_REPORTS_PER_ADDRESS) return;
    this.unclaimedSeen.set(key, seen + 1);
    this.log(level, `vCPU ${vcpu}: ${size}-byte ${what} ${space} 0x${addr.toString(16)} that no device claims${what === "read from" ? " (reads as all ones)" : ""}${seen + 1 === UNCLAIMED_REPORTS_PER_ADDRESS ? "; not reported again" : ""}`);
  }
}
