/**
 * Child of bench/snapshot.ts: restores a snapshot in this process through the library of the build at `lib` (its
 * dist/src/lib/index.js), `runs` times, each time once warm threads have been started and given 700 ms; prints the
 * times of loadSnapshot() + start() (the state file read and checked → every vCPU running), in ms, as JSON.
 *
 *   node dist/bench/snapshot-in-process.js LIB SNAPSHOT MEMORY RUNS
 */
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";

interface Lib {
  prestartWorkers(counts: { devices?: number; vcpu?: number }): void;
  loadSnapshot(source: { snapshotPath: string; memFilePath: string }, options: { console: "none" }): { start(): Promise<void>; stop(): Promise<unknown> };
}

const [lib, snapshotPath, memFilePath, runs] = process.argv.slice(2);
const { prestartWorkers, loadSnapshot } = (await import(pathToFileURL(lib).href)) as Lib;
const times: number[] = [];
for (let i = 0; i < Number(runs); i++) {
  prestartWorkers({ devices: 1, vcpu: 1 });
  await sleep(700);
  const t0 = performance.now();
  const vm = loadSnapshot({ snapshotPath, memFilePath }, { console: "none" });
  await vm.start();
  times.push(performance.now() - t0);
  await vm.stop();
}
console.log(JSON.stringify(times));
process.exit(0);
