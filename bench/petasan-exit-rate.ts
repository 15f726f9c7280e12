/**
 * The petasan side of the exit-rate benchmark: builds and runs the pio-loop guest inside this process
 * with petasan's own builder and run loop (the same code `petasan run` uses), and times the loop from
 * the exit counters the vCPU thread keeps (src/vmm/vcpu/control.ts).
 *
 * Timing: this thread samples (time, counter) pairs every 10 ms while the guest runs.
 * Each pair is exact (the counters are shared memory); the rate is taken between the first sample
 * inside the loop (counter > 0) and the last one still inside it (counter < iterations, no `in` from
 * the post-loop serial output yet). So process start-up, VM building, thread start and teardown are
 * all outside the window, as they are outside the C baseline's; only steady-state exits are timed.
 * The sampling costs the vCPU thread nothing (plain loads on another core); the process CPU time it
 * reports includes this sampling thread's small share.
 */
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { buildVm, type ThreadFilters } from "../src/vmm/builder.js";
import { DEFAULT_MACHINE_CONFIG } from "../src/config/machine-config.js";
import type { VmConfig } from "../src/config/vm-config.js";
import type { ExitCounter } from "../src/vmm/vcpu/control.js";
import { BenchError } from "./bench-error.js";
import type { ExitTiming } from "./c-baseline.js";

/** Long enough that waking this thread does not perturb the vCPU thread (1 ms did, measurably, here). */
const SAMPLE_INTERVAL_MS = 10;
/** A guest still running after this long is stuck: stop it rather than hang the benchmark. */
const RUN_TIMEOUT_MS = 300_000;

export interface PetasanLoopRun {
  elf: string;
  memMib: number;
  iterations: number;
  /** The counter the loop's exits land in: io_out for a port, mmio_read for an MMIO address. */
  counter: ExitCounter;
  /** Give the VM an entropy device (the loop then reads its virtio-mmio registers). */
  entropy?: boolean;
  /** Seccomp filters the VM's threads install (bench/seccomp.ts); default none. */
  seccomp?: ThreadFilters;
}

interface Sample {
  ns: number;
  /** process.cpuUsage(): user + system CPU of every thread of this process, in ns. */
  cpuNs: number;
  count: number;
}

function processCpuNs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

export async function measurePetasanExitRate(run: PetasanLoopRun): Promise<ExitTiming> {
  const config: VmConfig = {
    "boot-source": { kernel_image_path: run.elf },
    "machine-config": { ...DEFAULT_MACHINE_CONFIG, mem_size_mib: run.memMib },
    drives: [],
    "network-interfaces": [],
    ...(run.entropy && { entropy: {} }),
  };
  const vmm = await buildVm(config, { serialOutputFd: null, log: { fd: 2, level: "Warning" }, seccomp: run.seccomp });
  let exited = false;
  const whenExited = vmm.whenExited().then((e) => ((exited = true), e));
  await vmm.start();

  let first: Sample | undefined;
  let last: Sample | undefined;
  const deadline = performance.now() + RUN_TIMEOUT_MS;
  while (!exited) {
    if (performance.now() > deadline) {
      await vmm.stop("benchmark timeout");
      throw new BenchError(`petasan: the pio-loop guest was still running after ${RUN_TIMEOUT_MS / 1000} s`);
    }
    const counters = vmm.vcpuMetrics()[0];
    const sample = { ns: performance.now() * 1e6, cpuNs: processCpuNs(), count: counters[run.counter] };
    // The window opens once a quarter of the loop has run: until then V8 is still compiling the vCPU thread's exit
    // path (interpreted, then optimized), a start-up cost the C side does not have, which weighs a lot in a short
    // loop of fast (ring-0) exits. Both sides then time the steady state.
    const inLoop = sample.count >= run.iterations / 4 && sample.count < run.iterations && counters.io_in === 0;
    if (inLoop) {
      first ??= sample;
      last = sample;
    }
    await sleep(SAMPLE_INTERVAL_MS);
  }
  const exit = await whenExited;
  if (exit.exitCode !== 0) throw new BenchError(`petasan: the pio-loop guest failed: ${exit.message}`);
  if (!first || !last || last.count === first.count) {
    throw new BenchError(`petasan: the loop of ${run.iterations} exits ended before two samples were taken; use more iterations`);
  }
  return { exits: last.count - first.count, elapsedNs: last.ns - first.ns, cpuNs: last.cpuNs - first.cpuNs };
}
