/**
 * What seccomp costs the run loop: PIO exits per second with petasan's default filters (the process filter on
 * every thread, the vCPU and device threads' own on top, as `petasan run` installs them) against none, on the
 * same guest in the same invocation, as a ratio (1.00 = free).
 *
 *   node dist/bench/seccomp.js [--iterations N] [--runs N]
 *
 * Each run is a child process (a process filter cannot be taken off again), sides alternating which goes
 * first; the ratio is the median over back-to-back pairs. Cases as bench/exit-rate.ts: port 0x80 served on the
 * vCPU thread (every exit is one KVM_RUN: the filters' cost per call shows most), and port 0x3ff, served by the
 * device thread (the hop adds eventfd writes, epoll_wait and futex calls, each filtered too). Ring 3 only: it
 * runs natively here, so the per-exit cost is the smallest and the filters' share the largest.
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { measurePetasanExitRate } from "./petasan-exit-rate.js";
import { pioLoopImage } from "./pio-loop-image.js";
import { kvmUnavailableReason } from "./kvm-check.js";
import { formatTable, intOption, median } from "./stats.js";
import type { ExitTiming } from "./c-baseline.js";
import type { ExitCounter } from "../src/vmm/vcpu/control.js";
import { POST_CODE_PORT } from "../src/devices/legacy/sink.js";
import { compileSeccompPolicy, lockDownProcessThreads } from "../src/lib/seccomp.js";

const MEM_MIB = 128;
const COM1_SCRATCH_PORT = 0x3ff;
const CASES: { label: string; port: number; counter: ExitCounter }[] = [
  { label: "port 0x80 (io_delay)", port: POST_CODE_PORT, counter: "io_out" },
  { label: "port 0x3ff (UART scratch)", port: COM1_SCRATCH_PORT, counter: "io_out" },
];
const perSecond = (t: ExitTiming) => t.exits / (t.elapsedNs / 1e9);
const rate = (n: number) => Math.round(n).toLocaleString("en-US");

/** One side, in this (child) process: prints its ExitTiming as JSON. */
async function side(argv: string[]): Promise<void> {
  const [, filters, elf, counter, iterations] = argv;
  const seccomp = filters === "on" ? compileSeccompPolicy() : undefined;
  if (seccomp) lockDownProcessThreads(seccomp);
  const t = await measurePetasanExitRate({ elf, memMib: MEM_MIB, iterations: Number(iterations), counter: counter as ExitCounter, seccomp });
  process.stdout.write(`${JSON.stringify(t)}\n`);
}

function runSide(filters: "on" | "off", elf: string, counter: ExitCounter, iterations: number): ExitTiming {
  const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), "--side", filters, elf, counter, String(iterations)], { encoding: "utf8" });
  return JSON.parse(out.trim().split("\n").at(-1)!) as ExitTiming;
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === "--side") return side(argv);
  const unavailable = kvmUnavailableReason();
  if (unavailable) {
    console.log(`seccomp: skipped, ${unavailable}`);
    return;
  }
  const iterations = intOption(argv, "iterations", 20_000);
  const runs = intOption(argv, "runs", 5);
  const rows = [["case", "with filters exits/s", "without exits/s", "ratio"]];
  for (const c of CASES) {
    const elf = await pioLoopImage({ iterations, ring: 3, port: c.port });
    const on: ExitTiming[] = [];
    const off: ExitTiming[] = [];
    for (let i = 0; i < runs; i++) {
      const order = i % 2 === 0 ? (["on", "off"] as const) : (["off", "on"] as const);
      for (const f of order) (f === "on" ? on : off).push(runSide(f, elf, c.counter, iterations));
    }
    const ratio = median(on.map((t, i) => perSecond(t) / perSecond(off[i])));
    rows.push([c.label, rate(median(on.map(perSecond))), rate(median(off.map(perSecond))), ratio.toFixed(2)]);
  }
  console.log(`PIO exit rate with petasan's seccomp filters against none, ring 3, ${iterations} exits per run, ${runs} runs per side; ratio = median of with/without over back-to-back pairs`);
  console.log(formatTable(rows));
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`seccomp: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
