/**
 * Wall and CPU time of a stretch of work. CPU time (user + system of this process, getrusage) is
 * reported beside wall time because on a shared, oversubscribed machine the wall time of a pass
 * mostly measures how long other processes held the cores; the CPU time is what the work itself cost.
 */
import { performance } from "node:perf_hooks";

export interface Timing {
  wallNs: number;
  cpuNs: number;
}

export class Stopwatch {
  private readonly wallStart = performance.now();
  private readonly cpuStart = process.cpuUsage();

  elapsed(): Timing {
    const cpu = process.cpuUsage(this.cpuStart);
    return { wallNs: (performance.now() - this.wallStart) * 1e6, cpuNs: (cpu.user + cpu.system) * 1e3 };
  }
}

export function addTimings(a: Timing, b: Timing): Timing {
  return { wallNs: a.wallNs + b.wallNs, cpuNs: a.cpuNs + b.cpuNs };
}

export const NO_TIME: Timing = { wallNs: 0, cpuNs: 0 };
