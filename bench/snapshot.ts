/**
 * Restore time against guest memory size, beside a fresh boot of the same guest in the same run.
 *
 *   node dist/bench/snapshot.js [--runs N] [--sizes 128,1024,4096] [--baseline-cli PATH]
 *
 * For each size (MiB): the counter test guest (test/guests/counter.S) is booted through the API, counts a
 * little, is paused and snapshotted (Full) once. Then, interleaved per run:
 * - restore: a fresh `petasan --api-sock` process, ready; PUT /snapshot/load with resume_vm sent → its 204 (the
 *   vCPUs run: Firecracker's "load request → guest running"), and → the guest's next counter line on stdout
 *   (which also waits for the rest of the guest's own pause between lines, 0-30 ms);
 * - boot (baseline): a fresh process, ready, boot-source and machine-config PUT; InstanceStart sent → its 204,
 *   and → the guest's first counter line.
 * - restore into a pre-started process: the same, but the load is sent 1 s after the API first answered, once the
 *   process's warm device and vCPU threads have started (how a pool of ready VMM processes is used).
 * Restore maps the memory file MAP_PRIVATE and reads nothing up front, so its time should not grow with size.
 * With --baseline-cli (another build's dist/src/cli/main.js, e.g. of an older commit: `git archive <commit> | tar -x
 * -C DIR`, link node_modules, `npx tsc`), each run also restores the same snapshot into a pre-started process of that
 * build, right after this build's, and prints the ratio of the medians: before/after in one invocation. Each build
 * restores a snapshot it took itself of the same guest at the same size (state file formats differ between builds).
 * Last, without the API: loadSnapshot() + start() in a process of its own with warm threads (snapshot-in-process.ts),
 * this build's and the baseline's taking turns.
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { requestOverSocket } from "../src/api/api-client.js";
import { buildTestGuest } from "../test/guests/build.js";
import { spawnTimed, waitForFirstAnswer, type TimedChild } from "./api-boot-process.js";
import { BenchError } from "./bench-error.js";
import { kvmUnavailableReason } from "./kvm-check.js";
import { formatTable, intOption, median } from "./stats.js";

const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const IN_PROCESS = fileURLToPath(new URL("./snapshot-in-process.js", import.meta.url));
const LIB = fileURLToPath(new URL("../src/lib/index.js", import.meta.url));
/** In-process restores: turns per build, restores per turn. */
const IN_PROCESS_TURNS = 3;
const IN_PROCESS_RUNS = 5;
const LINE = /counter: [0-9a-f]{16}\n/;

interface Timing {
  answered: number;
  firstLine: number;
}

async function expectNoContent(sock: string, method: string, url: string, body: object): Promise<void> {
  const r = await requestOverSocket(sock, method, url, body);
  if (r.status !== 204) throw new BenchError(`${method} ${url} answered ${r.status}: ${r.text}`);
}

/** Resolves when a whole counter line has appeared on stdout after `from` characters. */
async function lineAfter(p: TimedChild, from: number): Promise<number> {
  for (;;) {
    if (LINE.test(p.stdout().slice(from))) return performance.now();
    if (p.child.exitCode !== null) throw new BenchError(`petasan ended; stdout:\n${p.stdout()}`);
    await new Promise((r) => setImmediate(r));
  }
}

async function startApi(sock: string, cli = CLI): Promise<TimedChild> {
  const p = spawnTimed(process.execPath, [cli, "--api-sock", sock]);
  await waitForFirstAnswer(sock, p);
  return p;
}

async function makeSnapshot(dir: string, kernel: string, mib: number, cli = CLI, tag = ""): Promise<{ snap: string; mem: string }> {
  const sock = path.join(dir, `make-${tag}${mib}.sock`);
  const p = await startApi(sock, cli);
  try {
    await expectNoContent(sock, "PUT", "/boot-source", { kernel_image_path: kernel });
    await expectNoContent(sock, "PUT", "/machine-config", { vcpu_count: 1, mem_size_mib: mib });
    await expectNoContent(sock, "PUT", "/actions", { action_type: "InstanceStart" });
    await lineAfter(p, 0);
    await sleep(100);
    await expectNoContent(sock, "PATCH", "/vm", { state: "Paused" });
    const snap = path.join(dir, `${tag}${mib}.snap`);
    const mem = path.join(dir, `${tag}${mib}.mem`);
    await expectNoContent(sock, "PUT", "/snapshot/create", { snapshot_type: "Full", snapshot_path: snap, mem_file_path: mem });
    return { snap, mem };
  } finally {
    p.child.kill("SIGKILL");
  }
}

/** A pre-started process has had this long to start its warm threads. */
const PRESTARTED_IDLE_MS = 1000;

async function restore(sock: string, snap: string, mem: string, idleMs = 0, cli = CLI): Promise<Timing> {
  const p = await startApi(sock, cli);
  try {
    await sleep(idleMs);
    const from = p.stdout().length;
    const sentAt = performance.now();
    await expectNoContent(sock, "PUT", "/snapshot/load", { snapshot_path: snap, mem_backend: { backend_type: "File", backend_path: mem }, resume_vm: true });
    const answeredAt = performance.now();
    const lineAt = await lineAfter(p, from);
    return { answered: answeredAt - sentAt, firstLine: lineAt - sentAt };
  } finally {
    p.child.kill("SIGKILL");
  }
}

async function boot(sock: string, kernel: string, mib: number): Promise<Timing> {
  const p = await startApi(sock);
  try {
    await expectNoContent(sock, "PUT", "/boot-source", { kernel_image_path: kernel });
    await expectNoContent(sock, "PUT", "/machine-config", { vcpu_count: 1, mem_size_mib: mib });
    const sentAt = performance.now();
    await expectNoContent(sock, "PUT", "/actions", { action_type: "InstanceStart" });
    const answeredAt = performance.now();
    const lineAt = await lineAfter(p, 0);
    return { answered: answeredAt - sentAt, firstLine: lineAt - sentAt };
  } finally {
    p.child.kill("SIGKILL");
  }
}

function sizesOption(argv: readonly string[]): number[] {
  const at = argv.indexOf("--sizes");
  if (at < 0) return [128, 1024, 4096];
  const sizes = (argv[at + 1] ?? "").split(",").map(Number);
  if (!sizes.every((s) => Number.isInteger(s) && s >= 2)) throw new BenchError(`--sizes: "${argv[at + 1]}" is not a list of MiB sizes`);
  return sizes;
}

/** Restore times (ms) of loadSnapshot() + start() in a fresh process, through the library at `lib`. */
async function restoreInProcess(lib: string, snap: string, mem: string): Promise<number[]> {
  const p = spawnTimed(process.execPath, [IN_PROCESS, lib, snap, mem, String(IN_PROCESS_RUNS)]);
  await p.finished;
  return JSON.parse(p.stdout()) as number[];
}

function baselineCliOption(argv: readonly string[]): string | undefined {
  const at = argv.indexOf("--baseline-cli");
  if (at < 0) return undefined;
  const cli = argv[at + 1];
  if (!cli || !existsSync(cli)) throw new BenchError(`--baseline-cli: "${cli ?? ""}" is not a file (another build's dist/src/cli/main.js)`);
  return path.resolve(cli);
}

async function main(argv: string[]): Promise<void> {
  const unavailable = kvmUnavailableReason();
  if (unavailable) {
    console.log(`snapshot: skipped, ${unavailable}`);
    return;
  }
  const runs = intOption(argv, "runs", 5);
  const sizes = sizesOption(argv);
  const baselineCli = baselineCliOption(argv);
  const dir = await mkdtemp(path.join(tmpdir(), "petasan-bench-snapshot-"));
  try {
    const kernel = await buildTestGuest("counter");
    const snaps = new Map<number, { snap: string; mem: string }>();
    for (const mib of sizes) snaps.set(mib, await makeSnapshot(dir, kernel, mib));
    const baselineSnaps = new Map<number, { snap: string; mem: string }>();
    if (baselineCli) for (const mib of sizes) baselineSnaps.set(mib, await makeSnapshot(dir, kernel, mib, baselineCli, "baseline-"));
    const restores = new Map<number, Timing[]>(sizes.map((s) => [s, []]));
    const prestarted = new Map<number, Timing[]>(sizes.map((s) => [s, []]));
    const boots = new Map<number, Timing[]>(sizes.map((s) => [s, []]));
    const baseline = new Map<number, Timing[]>(sizes.map((s) => [s, []]));
    const baselineCold = new Map<number, Timing[]>(sizes.map((s) => [s, []]));
    let n = 0;
    for (let run = 0; run < runs; run++) {
      for (const mib of sizes) {
        const { snap, mem } = snaps.get(mib)!;
        restores.get(mib)!.push(await restore(path.join(dir, `r${n++}.sock`), snap, mem));
        prestarted.get(mib)!.push(await restore(path.join(dir, `p${n++}.sock`), snap, mem, PRESTARTED_IDLE_MS));
        if (baselineCli) {
          const theirs = baselineSnaps.get(mib)!;
          baselineCold.get(mib)!.push(await restore(path.join(dir, `c${n++}.sock`), theirs.snap, theirs.mem, 0, baselineCli));
          baseline.get(mib)!.push(await restore(path.join(dir, `q${n++}.sock`), theirs.snap, theirs.mem, PRESTARTED_IDLE_MS, baselineCli));
        }
        boots.get(mib)!.push(await boot(path.join(dir, `b${n++}.sock`), kernel, mib));
      }
    }
    const med = (t: Timing[], k: keyof Timing) => median(t.map((x) => x[k]));
    const smallest = sizes[0];
    const rows = [
      ["guest RAM", "load->204 ms", "pre-started: load->204 ms", "boot: start->204 ms", "restore/boot", `load->204 / ${smallest} MiB's`, "load->line ms", "boot: start->line ms"],
      ...sizes.map((mib) => {
        const r = restores.get(mib)!;
        const p = prestarted.get(mib)!;
        const b = boots.get(mib)!;
        return [
          `${mib} MiB`, med(r, "answered").toFixed(1), med(p, "answered").toFixed(1), med(b, "answered").toFixed(1), (med(r, "answered") / med(b, "answered")).toFixed(2),
          (med(r, "answered") / med(restores.get(smallest)!, "answered")).toFixed(2), med(r, "firstLine").toFixed(1), med(b, "firstLine").toFixed(1),
        ];
      }),
    ];
    console.log(`snapshot, ${runs} runs per size, medians (restore: PUT /snapshot/load with resume_vm; boot: InstanceStart)\n\n${formatTable(rows)}`);
    if (baselineCli) {
      const compared = [
        ["guest RAM", "load->204 ms", "baseline: load->204 ms", "this/baseline", "pre-started: load->204 ms", "baseline: pre-started", "this/baseline",
          "pre-started: load->line ms", "baseline: pre-started", "this/baseline"],
        ...sizes.map((mib) => {
          const r = restores.get(mib)!;
          const c = baselineCold.get(mib)!;
          const p = prestarted.get(mib)!;
          const b = baseline.get(mib)!;
          const cells = (x: Timing[], y: Timing[], k: keyof Timing) => [med(x, k).toFixed(1), med(y, k).toFixed(1), (med(x, k) / med(y, k)).toFixed(2)];
          return [`${mib} MiB`, ...cells(r, c, "answered"), ...cells(p, b, "answered"), ...cells(p, b, "firstLine")];
        }),
      ];
      console.log(`\nagainst the baseline build ${baselineCli} (restores of the same guest's snapshot, one after the other in each run)\n\n${formatTable(compared)}`);
    }
    const baselineLib = baselineCli && path.resolve(path.dirname(baselineCli), "../lib/index.js");
    const inProcess = [["guest RAM", "in-process: loadSnapshot()+start() ms", ...(baselineLib ? ["baseline build", "this/baseline"] : [])]];
    for (const mib of sizes) {
      const { snap, mem } = snaps.get(mib)!;
      const ours: number[] = [];
      const theirs: number[] = [];
      for (let turn = 0; turn < IN_PROCESS_TURNS; turn++) {
        ours.push(...(await restoreInProcess(LIB, snap, mem)));
        if (baselineLib) theirs.push(...(await restoreInProcess(baselineLib, baselineSnaps.get(mib)!.snap, baselineSnaps.get(mib)!.mem)));
      }
      inProcess.push([`${mib} MiB`, median(ours).toFixed(1), ...(baselineLib ? [median(theirs).toFixed(1), (median(ours) / median(theirs)).toFixed(2)] : [])]);
    }
    console.log(`\nwithout the API: the library in a process with warm threads, ${IN_PROCESS_TURNS * IN_PROCESS_RUNS} restores per build and size, medians\n\n${formatTable(inProcess)}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`snapshot: ${e instanceof BenchError ? e.message : ((e as Error).stack ?? e)}\n`);
    process.exit(1);
  },
);
