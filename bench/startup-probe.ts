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
 *   exited     the guest's reset has been handled and everything is torn down.
 * With --prestart, it first starts the VM's threads ahead (prestartWorkers, as `petasan run` does before loading
 * the rest of petasan), then loads petasan's modules.
 * Usage: node dist/bench/startup-probe.js <kernel-elf> [--prestart]
 */
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { prestartWorkers } from "../src/lib/prestart.js";

const POLL_MS = 1;
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
  while (firstExit === undefined && exitedAt === undefined) {
    if (Object.values(vmm.vcpuMetrics()[0]).some((n) => n > 0)) firstExit = performance.now();
    else await sleep(POLL_MS);
  }
  const exit = await whenExited;
  if (exit.exitCode !== 0) throw new BenchError(`the guest failed: ${exit.message}`);
  const nodeReady = performance.nodeTiming.bootstrapComplete;
  console.log(JSON.stringify({ nodeReady, imported, built, started, firstExit: firstExit ?? exitedAt, exited: exitedAt }));
}

probe(process.argv[2] ?? "").then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`startup-probe: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
