/**
 * Child process of startup.ts: builds and runs a guest with petasan's builder exactly as `petasan run`
 * does, and prints one JSON line of milestones in milliseconds since this process started
 * (performance.now() counts from Node's time origin, taken when the process starts):
 *   nodeReady  Node bootstrapped, before petasan's modules load;
 *   imported   petasan's modules loaded (static imports resolve before this file's body runs);
 *   built      buildVm done: KVM VM, RAM, kernel loaded, vCPUs configured;
 *   started    Vmm.start resolved: the device thread is ready and the vCPU threads are spawned (today
 *              start() also waits until each vCPU thread is in its run loop);
 *   firstExit  the vCPU's exit counters first seen non-zero: its first KVM_RUN has returned (polled
 *              every millisecond, so up to 1 ms late);
 *   exited     the guest's reset has been handled and everything is torn down;
 * and `cpu`: each thread's CPU time (ms) when the first exit was seen.
 * With --prestart, it first starts the VM's threads ahead (prestartWorkers, as `petasan run` does before loading
 * the rest of petasan), then loads petasan's modules.
 * Usage: node dist/bench/startup-probe.js <kernel-elf> [--prestart]
 */
import { readdirSync, readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { prestartWorkers } from "../src/lib/prestart.js";

const POLL_MS = 1;

/**
 * CPU time so far of this process's threads by name (/proc/self/task/TID/schedstat: ns on the CPU): "main", the
 * VM's threads, and Node's own (V8's platform threads, libuv's pool: "node" and others), summed by name.
 */
function threadCpuMs(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const tid of readdirSync("/proc/self/task")) {
    const name = Number(tid) === process.pid ? "main" : readFileSync(`/proc/self/task/${tid}/comm`, "utf8").trim();
    const ns = Number(readFileSync(`/proc/self/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    out[name] = (out[name] ?? 0) + ns / 1e6;
  }
  return out;
}
if (process.argv.includes("--prestart")) prestartWorkers({ devices: 1, vcpu: 1 });
const [{ buildVm }, { DEFAULT_MACHINE_CONFIG }, { BenchError }] = await Promise.all([
  import("../src/vmm/builder.js"), import("../src/config/machine-config.js"), import("./bench-error.js"),
]);
const imported = performance.now();

async function probe(kernel: string): Promise<void> {
  const vmm = await buildVm(
    { "boot-source": { kernel_image_path: kernel }, "machine-config": { ...DEFAULT_MACHINE_CONFIG }, drives: [], "network-interfaces": [] },
    { serialOutputFd: null, log: { fd: 2, level: "Warning" } },
  );
  const built = performance.now();
  let exitedAt: number | undefined;
  const whenExited = vmm.whenExited().then((e) => ((exitedAt = performance.now()), e));
  await vmm.start();
  const started = performance.now();
  let firstExit: number | undefined;
  let cpu: Record<string, number> | undefined;
  while (firstExit === undefined && exitedAt === undefined) {
    if (Object.values(vmm.vcpuMetrics()[0]).some((n) => n > 0)) {
      firstExit = performance.now();
      cpu = threadCpuMs();
    }
    else await sleep(POLL_MS);
  }
  const exit = await whenExited;
  if (exit.exitCode !== 0) throw new BenchError(`the guest failed: ${exit.message}`);
  const nodeReady = performance.nodeTiming.bootstrapComplete;
  console.log(JSON.stringify({ nodeReady, imported, built, started, firstExit: firstExit ?? exitedAt, exited: exitedAt, ...(cpu && { cpu }) }));
}

probe(process.argv[2] ?? "").then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`startup-probe: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
