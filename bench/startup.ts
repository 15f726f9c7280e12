/**
 * Start-up time and memory overhead of petasan, each beside a baseline measured in the same run.
 *
 *   node dist/bench/startup.js [--runs N]
 *
 * (a) Start-up. A guest that resets at once (pio-loop with 0 iterations: 15 characters on COM1 and
 *     an i8042 reset, ~30 exits) run three ways, wall time from spawn to exit:
 *       - `node -e 0`: the floor of any Node process;
 *       - the C baseline (exit-rate-baseline.c): what KVM itself costs to create and run this VM;
 *       - `bin/petasan.js run --kernel <guest> --serial none`: what a user waits for (the bundle, if built).
 *     Then where petasan's time goes, from startup-probe.js (the builder and run loop the CLI uses,
 *     in a fresh process): milestones from process start to the first KVM_RUN's return and to exit; the
 *     same with the VM's threads started first, before petasan's modules load; and that from a bundle of the
 *     probe and the threads (scripts/bundle.mjs, made here in dist/bench/bundle), as `petasan run` does.
 * (b) Memory. `petasan run` with 256 MiB of guest RAM and the echo guest idling for input, read from
 *     /proc: VmRSS, minus what the guest touched (the resident part of the guest RAM mapping), is the
 *     VMM's own footprint. Beside it, a bare `node -e "setTimeout(()=>{},1000)"`: Node's own floor.
 *     File-backed pages (the node binary, shared by every Node process) are shown apart.
 * --baseline DIR: also runs DIR's startup-probe (DIR: another petasan checkout, built, e.g. an older commit from
 *     `git archive <commit> | tar -x -C DIR`, node_modules linked, `npx tsc -p .`), interleaved with this one's, and
 *     prints both sets of milestones with their ratio (each run as its `petasan run` does: DIR's probe bundled if
 *     DIR has scripts/bundle.mjs, else from dist/src, with the threads prestarted), and its `petasan run` beside
 *     this one's in (a): a change's before and after in the same invocation.
 * --no-memory: (a) only.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { buildTestGuest } from "../test/guests/build.js";
import { BenchError } from "./bench-error.js";
import { buildCBaseline } from "./c-baseline.js";
import { kvmUnavailableReason } from "./kvm-check.js";
import { pioLoopImage } from "./pio-loop-image.js";
import { readGuestRamResidency, readProcessMemory, type ProcessMemory } from "./proc-memory.js";
import { formatTable, intOption, median } from "./stats.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CLI = path.join(ROOT, "bin/petasan.js");
const PROBE = fileURLToPath(new URL("./startup-probe.js", import.meta.url));
/** Where the probe's bundle goes, in this checkout and in --baseline's. */
const PROBE_BUNDLE = "dist/bench/bundle";
const MEMORY_GUEST_MIB = 256;
/** The pio-loop writes port 0x80 in its (here empty) loop; 128 MiB is the machine-config default. */
const RESET_GUEST = { iterations: 0, ring: 0, port: 0x80 } as const;
const C_BASELINE_MEM_MIB = 128;
/** The echo guest prints this once it waits for serial input (test/guests/echo.c). */
const ECHO_READY = "echo: ready\n";
/** Time for a process to settle before its memory is read. */
const SETTLE_MS = 500;
const CHILD_TIMEOUT_MS = 60_000;

interface ChildRun {
  wallMs: number;
  stdout: string;
}

/** Runs a command to completion; fails on a non-zero exit or after CHILD_TIMEOUT_MS. */
function timedRun(command: string, args: string[]): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), CHILD_TIMEOUT_MS);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const wallMs = performance.now() - start;
      if (code === 0) resolve({ wallMs, stdout });
      else reject(new BenchError(`${command} ${args.join(" ")} ended with ${code ?? signal}:\n${stderr}`));
    });
  });
}

const MILESTONES = ["nodeReady", "imported", "built", "started", "firstExit", "exited"] as const;
type Milestones = Record<(typeof MILESTONES)[number], number> & { cpu?: Record<string, number> };
/** The threads startup-probe names in its CPU times; Node's own (V8's platform threads, libuv's) are summed. */
const CPU_THREADS = ["main", "petasan-devices", "petasan-vcpu0"] as const;

/** Median CPU ms per thread until the first exit, rows by thread, a column per list of probes. */
function cpuRows(columns: [string, Milestones[]][]): string[][] {
  const pick = (p: Milestones, thread: string) => {
    const cpu = p.cpu ?? {};
    if (thread === "total") return Object.values(cpu).reduce((a, b) => a + b, 0);
    if (thread === "Node's other threads") return Object.entries(cpu).filter(([name]) => !(CPU_THREADS as readonly string[]).includes(name)).reduce((a, [, ms]) => a + ms, 0);
    return cpu[thread] ?? 0;
  };
  const rows = [["CPU ms until the first exit, by thread", ...columns.map(([label]) => label)]];
  for (const thread of [...CPU_THREADS, "Node's other threads", "total"]) rows.push([thread, ...columns.map(([, list]) => median(list.map((p) => pick(p, thread))).toFixed(1))]);
  return rows;
}

function milestoneMedians(probes: Milestones[]): Record<(typeof MILESTONES)[number], number> {
  return Object.fromEntries(MILESTONES.map((m) => [m, median(probes.map((p) => p[m]))])) as Record<(typeof MILESTONES)[number], number>;
}

/** What bin/petasan.js of the checkout at `root` runs: its bundle if not older than tsc's output (bin/petasan.js). */
function cliRuns(root: string): string {
  const mtime = (file: string) => statSync(path.join(root, file), { throwIfNoEntry: false })?.mtimeMs ?? -1;
  const bundle = mtime("dist/bundle/petasan.js");
  return bundle >= 0 && bundle >= mtime("dist/src/cli/main.js") ? "bundle" : "dist/src";
}

/**
 * The probe of the checkout at `root` as its `petasan run` runs: bundled with the threads, by that checkout's
 * scripts/bundle.mjs, when it has one (then `bundled`), else its dist/bench/startup-probe.js.
 */
function probeAsPetasanRun(root: string): { probe: string; bundled: boolean } {
  const script = path.join(root, "scripts/bundle.mjs");
  if (!existsSync(script)) return { probe: path.join(root, "dist/bench/startup-probe.js"), bundled: false };
  execFileSync(process.execPath, [script, PROBE_BUNDLE, "startup-probe=dist/bench/startup-probe.js"], { stdio: "inherit" });
  return { probe: path.join(root, PROBE_BUNDLE, "startup-probe.js"), bundled: true };
}

async function startupFigures(runs: number, baselineDir?: string): Promise<string> {
  const guest = await pioLoopImage(RESET_GUEST);
  const baseline = await buildCBaseline();
  const commands: [string, string, string[]][] = [
    ["node -e 0 (Node's floor)", process.execPath, ["-e", "0"]],
    ["C baseline, same guest", baseline, [guest, String(C_BASELINE_MEM_MIB), "0x80"]],
    [`petasan run, same guest (${cliRuns(ROOT)})`, process.execPath, [CLI, "run", "--kernel", guest, "--serial", "none"]],
  ];
  if (baselineDir) commands.push([`petasan run, same guest: baseline (${cliRuns(path.resolve(baselineDir))})`, process.execPath, [path.resolve(baselineDir, "bin/petasan.js"), "run", "--kernel", guest, "--serial", "none"]]);
  const walls = commands.map((): number[] => []);
  const probes: Milestones[] = [];
  const baselineProbes: Milestones[] = [];
  const prestarted: Milestones[] = [];
  const bundled: Milestones[] = [];
  const ours = probeAsPetasanRun(ROOT);
  const theirs = baselineDir ? probeAsPetasanRun(path.resolve(baselineDir)) : undefined;
  const probeRun = async (probe: string, ...args: string[]) => JSON.parse((await timedRun(process.execPath, [probe, guest, ...args])).stdout) as Milestones;
  // Interleaved, so load from other processes on the machine spreads over all of them.
  for (let i = 0; i < runs; i++) {
    for (const [at, [, command, args]] of commands.entries()) walls[at].push((await timedRun(command, args)).wallMs);
    probes.push(await probeRun(PROBE));
    prestarted.push(await probeRun(PROBE, "--prestart"));
    if (ours.bundled) bundled.push(await probeRun(ours.probe, "--prestart"));
    if (theirs) baselineProbes.push(await probeRun(theirs.probe, "--prestart"));
  }
  const wallRows = [["process (guest resets at once)", "wall ms", "x node floor"]];
  const floor = median(walls[0]);
  for (const [at, [label]] of commands.entries()) wallRows.push([label, median(walls[at]).toFixed(0), (median(walls[at]) / floor).toFixed(2)]);

  const columns: [string, Milestones[]][] = [["dist/src", probes], ["threads prestarted", prestarted]];
  if (ours.bundled) columns.push(["bundled, prestarted (as petasan run)", bundled]);
  const probeRows = [["petasan milestone (in-process probe), ms since process start", ...columns.flatMap(([label]) => [label, "step"])]];
  const medians = columns.map(([, list]) => milestoneMedians(list));
  MILESTONES.forEach((m, at) => {
    probeRows.push([m, ...medians.flatMap((ms) => [ms[m].toFixed(1), (ms[m] - (at ? ms[MILESTONES[at - 1]] : 0)).toFixed(1)])]);
  });
  const withCpu = columns.filter(([, list]) => list.every((p) => p.cpu));
  const cpuTable = withCpu.length ? `\n\n${formatTable(cpuRows(withCpu))}` : "";
  let compared = "";
  if (theirs) {
    const after = milestoneMedians(ours.bundled ? bundled : prestarted);
    const before = milestoneMedians(baselineProbes);
    const rows = [["milestone, ms since process start", "baseline", "this build", "this / baseline"]];
    for (const m of MILESTONES) rows.push([m, before[m].toFixed(1), after[m].toFixed(1), (after[m] / before[m]).toFixed(2)]);
    const how = (bundle: boolean) => (bundle ? "bundled" : "dist/src");
    compared = `\n\nAgainst the baseline ${baselineDir}, each as its petasan run (threads prestarted; baseline ${how(theirs.bundled)}, this build ${how(ours.bundled)}), probes interleaved, medians of ${runs}\n${formatTable(rows)}`;
  }
  return `Start-up, median of ${runs} runs\n${formatTable(wallRows)}\n\n${formatTable(probeRows)}${cpuTable}${compared}`;
}

/** The value of `--name value`, if given. */
function stringOption(argv: readonly string[], name: string): string | undefined {
  const at = argv.indexOf(`--${name}`);
  if (at < 0) return undefined;
  const value = argv[at + 1];
  if (value === undefined) throw new BenchError(`--${name} needs a value`);
  return value;
}

interface MemoryReading extends ProcessMemory {
  guestKiB: number;
  mergedExtraKiB: number;
}

/** Starts petasan with the echo guest, waits until it idles for input, reads its memory, then ends it. */
async function petasanIdleMemory(echoGuest: string): Promise<MemoryReading> {
  const child = spawn(process.execPath, [CLI, "run", "--kernel", echoGuest, "--memory", `${MEMORY_GUEST_MIB}M`, "--serial", "stdio"], { stdio: ["pipe", "pipe", "inherit"] });
  // If petasan dies first, the final "q" meets a closed pipe; the error that matters is thrown below.
  child.stdin!.on("error", () => {});
  const timer = setTimeout(() => child.kill("SIGKILL"), CHILD_TIMEOUT_MS);
  const ended = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  try {
    let stdout = "";
    await new Promise<void>((resolve, reject) => {
      child.stdout!.setEncoding("latin1").on("data", (d: string) => {
        stdout += d;
        if (stdout.includes(ECHO_READY)) resolve();
      });
      void ended.then(() => reject(new BenchError(`petasan ended before the echo guest was ready; stdout:\n${stdout}`)));
    });
    await sleep(SETTLE_MS);
    const memory = await readProcessMemory(child.pid!);
    const guest = await readGuestRamResidency(child.pid!, MEMORY_GUEST_MIB * 1024 * 1024);
    return { ...memory, guestKiB: guest.rssKiB, mergedExtraKiB: guest.mergedExtraKiB };
  } finally {
    child.stdin!.end("q"); // the echo guest's command to say bye and reset
    await ended;
    clearTimeout(timer);
  }
}

async function nodeFloorMemory(): Promise<ProcessMemory> {
  const child = spawn(process.execPath, ["-e", "setTimeout(()=>{},1000)"], { stdio: "ignore" });
  const ended = new Promise((resolve) => child.on("close", resolve));
  await sleep(SETTLE_MS);
  const memory = await readProcessMemory(child.pid!);
  await ended;
  return memory;
}

async function memoryFigures(runs: number): Promise<string> {
  const echo = await buildTestGuest("echo");
  const petasan: MemoryReading[] = [];
  const floor: ProcessMemory[] = [];
  for (let i = 0; i < runs; i++) {
    petasan.push(await petasanIdleMemory(echo));
    floor.push(await nodeFloorMemory());
  }
  const mib = (kib: number) => (kib / 1024).toFixed(1);
  const med = <T>(list: T[], pick: (t: T) => number) => median(list.map(pick));
  const p = {
    rss: med(petasan, (m) => m.rssKiB), guest: med(petasan, (m) => m.guestKiB), vmm: med(petasan, (m) => m.rssKiB - m.guestKiB),
    anon: med(petasan, (m) => m.anonKiB - m.guestKiB), file: med(petasan, (m) => m.fileKiB), threads: med(petasan, (m) => m.threads),
  };
  const n = { rss: med(floor, (m) => m.rssKiB), anon: med(floor, (m) => m.anonKiB), file: med(floor, (m) => m.fileKiB), threads: med(floor, (m) => m.threads) };
  const rows = [
    ["process", "VmRSS MiB", "guest RAM MiB", "VMM RSS MiB", "VMM anon MiB", "file MiB", "threads"],
    [`petasan, echo guest idle, ${MEMORY_GUEST_MIB} MiB`, mib(p.rss), mib(p.guest), mib(p.vmm), mib(p.anon), mib(p.file), String(p.threads)],
    ["node -e setTimeout (Node's floor)", mib(n.rss), "-", mib(n.rss), mib(n.anon), mib(n.file), String(n.threads)],
    ["ratio petasan / Node's floor", "", "", (p.vmm / n.rss).toFixed(2), (p.anon / n.anon).toFixed(2), (p.file / n.file).toFixed(2), ""],
  ];
  const merged = Math.max(...petasan.map((m) => m.mergedExtraKiB));
  const note = merged > 0 ? `\n(the guest RAM mapping had up to ${merged} KiB of another anonymous mapping merged into it; its pages count as guest RAM above)` : "";
  return `Memory, median of ${runs} runs (VMM RSS = VmRSS - resident guest RAM; anon = RssAnon, minus guest RAM for petasan)\n${formatTable(rows)}${note}`;
}

async function main(argv: string[]): Promise<void> {
  const unavailable = kvmUnavailableReason();
  if (unavailable) {
    console.log(`startup: skipped, ${unavailable}`);
    return;
  }
  const runs = intOption(argv, "runs", 5);
  const baseline = stringOption(argv, "baseline");
  console.log(await startupFigures(runs, baseline));
  if (argv.includes("--no-memory")) return;
  console.log();
  console.log(await memoryFigures(Math.min(runs, 3)));
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`startup: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
