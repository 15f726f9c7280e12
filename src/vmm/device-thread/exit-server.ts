/**
 * Serves vCPU exits posted to the device thread: decodes the exit in the vCPU's own kvm_run (shared memory,
 * zero copy), dispatches it to the PIO or MMIO bus, writes read results back in place, and wakes the vCPU.
 * An access nothing claims reads as all ones (an open bus) and is logged, a few times per address.
 */
import { KvmRunView, EXIT, IO_OUT } from "../../kvm/run.js";
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

  /** Serves every vCPU whose mailbox holds an exit. */
  serveAll(): void {
    for (const v of this.vcpus) {
      if (v.control.mailbox !== ExitMailbox.Pending) continue;
      try {
        this.serve(v);
      } catch (e) {
        this.log("Error", `vCPU ${v.id}: device failed while serving an exit: ${(e as Error).stack ?? e}`);
      }
      v.control.completeExit();
    }
  }

  private serve(v: ServedVcpu): void {
    const run = v.run;
    if (run.exitReason === EXIT.IO) {
      const size = run.ioSize;
      const port = run.ioPort;
      const out = run.ioDirection === IO_OUT;
      const data = run.ioData();
      for (let at = 0; at < data.length; at += size) {
        const chunk = data.subarray(at, at + size);
        const claimed = out ? this.pio.write(port, chunk) : this.pio.read(port, chunk);
        if (!claimed) this.unclaimed("Debug", v.id, out ? "write to" : "read from", "port", port, size, chunk);
      }
    } else if (run.exitReason === EXIT.MMIO) {
      const addr = run.mmioAddr;
      const data = run.mmioData();
      const claimed = run.mmioIsWrite ? this.mmio.write(addr, data) : this.mmio.read(addr, data);
      if (!claimed) this.unclaimed("Warning", v.id, run.mmioIsWrite ? "write to" : "read from", "address", addr, data.length, data);
    }
  }

  private unclaimed(level: "Debug" | "Warning", vcpu: number, what: string, space: string, addr: number, size: number, data: Uint8Array): void {
    if (what === "read from") data.fill(0xff);
    const key = `${space}${addr}`;
    const seen = this.unclaimedSeen.get(key) ?? 0;
    if (seen >= UNCLAIMED_REPORTS_PER_ADDRESS) return;
    this.unclaimedSeen.set(key, seen + 1);
    this.log(level, `vCPU ${vcpu}: ${size}-byte ${what} ${space} 0x${addr.toString(16)} that no device claims${what === "read from" ? " (reads as all ones)" : ""}${seen + 1 === UNCLAIMED_REPORTS_PER_ADDRESS ? "; not reported again" : ""}`);
  }
}
