/**
 * Memory of N clones restored from one snapshot, against N fresh boots of the same guest, in the same run.
 *
 *   node dist/bench/clones.js [--clones 10] [--lines 3]
 *
 * For each guest, the counter test guest (test/guests/counter.S: touches ~1 MiB) and counter-fill (the same with
 * a 64 MiB read-mostly working set: it writes 64 MiB once, then reads it all again before each line), in a 128 MiB VM:
 * - snapshot: booted once through the API, paused after its first line, snapshotted (Full), killed;
 * - clones: N `petasan --api-sock` processes each load that snapshot (resume_vm) at the same time;
 * - boots (baseline): N processes each boot the guest (InstanceStart) at the same time.
 * Once every VM of a group has printed `lines` more counter lines (so counter-fill has read its working set at least
 * once after the restore), every process is measured together, then the group is killed. Figures per group, summed:
 * VmRSS (/proc/<pid>/status: a shared page counts in every process that maps it), Pss (/proc/<pid>/smaps_rollup:
 * a page shared by k processes counts 1/k in each, so the sum is what the group costs the host), and the Rss and Pss
 * of the guest RAM mapping alone (/proc/<pid>/smaps: the memory file's mapping for a clone, the anonymous one for a
 * boot). A clone maps the memory file MAP_PRIVATE: a page it only reads is the page cache's page, shared by every
 * clone; a page it writes is copied for it alone.
 */
import { readFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { requestOverSocket } from "../src/api/api-client.js";
import { buildTestGuest } from "../test/guests/build.js";
import { spawnTimed, waitForFirstAnswer, type TimedChild } from "./api-boot-process.js";
import { BenchError } from "./bench-error.js";
import { kvmUnavailableReason } from "./kvm-check.js";
import { formatTable, intOption } from "./stats.js";

const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const LINE = /counter: [0-9a-f]{16}\n/g;
const MEM_MIB = 128;
const GUESTS = ["counter", "counter-fill"] as const;

interface Memory {
  rssKiB: number;
  pssKiB: number;
  ramRssKiB: number;
  ramPssKiB: number;
}

async function expectNoContent(sock: string, method: string, url: string, body: object): Promise<void> {
  const r = await requestOverSocket(sock, method, url, body);
  if (r.status !== 204) throw new BenchError(`${method} ${url} answered ${r.status}: ${r.text}`);
}

function linesIn(text: string): number {
  return text.match(LINE)?.length ?? 0;
}

async function untilLines(p: TimedChild, from: number, lines: number): Promise<void> {
  while (linesIn(p.stdout().slice(from)) < lines) {
    if (p.child.exitCode !== null) throw new BenchError(`petasan ended; stdout:\n${p.stdout()}`);
    await sleep(5);
  }
}

async function startApi(sock: string): Promise<TimedChild> {
  const p = spawnTimed(process.execPath, [CLI, "--api-sock", sock]);
  await waitForFirstAnswer(sock, p);
  return p;
}

async function bootGuest(sock: string, kernel: string): Promise<TimedChild> {
  const p = await startApi(sock);
  await expectNoContent(sock, "PUT", "/boot-source", { kernel_image_path: kernel });
  await expectNoContent(sock, "PUT", "/machine-config", { vcpu_count: 1, mem_size_mib: MEM_MIB });
  await expectNoContent(sock, "PUT", "/actions", { action_type: "InstanceStart" });
  return p;
}

/** `Name: <n> kB` from /proc text. */
function kib(text: string, name: string, where: string): number {
  const m = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text);
  if (!m) throw new BenchError(`${where} has no ${name} line`);
  return Number(m[1]);
}

/**
 * The guest RAM mapping's Rss and Pss from /proc/<pid>/smaps: the mapping of `memFile` when given (a clone), else
 * the smallest anonymous rw-p mapping at least `bytes` long (a boot; the kernel may merge a neighbouring heap into it).
 */
async function guestRam(pid: number, bytes: number, memFile?: string): Promise<{ rssKiB: number; pssKiB: number }> {
  const smaps = await readFile(`/proc/${pid}/smaps`, "utf8");
  let best: { size: number; rssKiB: number; pssKiB: number } | undefined;
  let current: { size: number; rssKiB: number; pssKiB: number } | undefined;
  for (const line of smaps.split("\n")) {
    const header = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (header) {
      const size = Number(BigInt(`0x${header[2]}`) - BigInt(`0x${header[1]}`));
      const wanted = memFile !== undefined ? header[5] === memFile && size === bytes : size >= bytes && header[3] === "rw-p" && header[4] === "0" && header[5] === "";
      current = wanted ? { size, rssKiB: 0, pssKiB: 0 } : undefined;
      continue;
    }
    if (!current) continue;
    const field = /^(Rss|Pss):\s+(\d+) kB/.exec(line);
    if (field?.[1] === "Rss") current.rssKiB = Number(field[2]);
    if (field?.[1] === "Pss") {
      current.pssKiB = Number(field[2]);
      if (!best || current.size < best.size) best = current;
    }
  }
  if (!best) throw new BenchError(`/proc/${pid}/smaps has no guest RAM mapping (${memFile ?? `anonymous, ≥ ${bytes} bytes`})`);
  return best;
}

async function measure(pid: number, memFile?: string): Promise<Memory> {
  const [status, rollup] = await Promise.all([readFile(`/proc/${pid}/status`, "utf8"), readFile(`/proc/${pid}/smaps_rollup`, "utf8")]);
  const ram = await guestRam(pid, MEM_MIB * 1024 * 1024, memFile);
  return { rssKiB: kib(status, "VmRSS", "status"), pssKiB: kib(rollup, "Pss", "smaps_rollup"), ramRssKiB: ram.rssKiB, ramPssKiB: ram.pssKiB };
}

function sum(ms: readonly Memory[]): Memory {
  return ms.reduce((a, m) => ({ rssKiB: a.rssKiB + m.rssKiB, pssKiB: a.pssKiB + m.pssKiB, ramRssKiB: a.ramRssKiB + m.ramRssKiB, ramPssKiB: a.ramPssKiB + m.ramPssKiB }));
}

async function makeSnapshot(dir: string, name: string, kernel: string): Promise<{ snap: string; mem: string }> {
  const sock = path.join(dir, `${name}-make.sock`);
  const p = await bootGuest(sock, kernel);
  try {
    await untilLines(p, 0, 1);
    await expectNoContent(sock, "PATCH", "/vm", { state: "Paused" });
    const snap = path.join(dir, `${name}.snap`);
    const mem = path.join(dir, `${name}.mem`);
    await expectNoContent(sock, "PUT", "/snapshot/create", { snapshot_type: "Full", snapshot_path: snap, mem_file_path: mem });
    return { snap, mem };
  } finally {
    p.child.kill("SIGKILL");
  }
}

/** Runs `start` N times at once, waits for `lines` lines from each, measures them all, kills them all. */
async function group(n: number, lines: number, start: (i: number) => Promise<{ p: TimedChild; from: number }>, memFile?: string): Promise<Memory> {
  const started = await Promise.allSettled(Array.from({ length: n }, (_, i) => start(i)));
  const running = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  try {
    const failed = started.find((s): s is PromiseRejectedResult => s.status === "rejected");
    if (failed) throw failed.reason;
    await Promise.all(running.map(({ p, from }) => untilLines(p, from, lines)));
    return sum(await Promise.all(running.map(({ p }) => measure(p.child.pid!, memFile))));
  } finally {
    for (const { p } of running) p.child.kill("SIGKILL");
    await Promise.all(running.map(({ p }) => p.finished.catch(() => {})));
  }
}

const mib = (k: number) => (k / 1024).toFixed(1);

async function main(argv: string[]): Promise<void> {
  const unavailable = kvmUnavailableReason();
  if (unavailable) {
    console.log(`clones: skipped, ${unavailable}`);
    return;
  }
  const n = intOption(argv, "clones", 10);
  const lines = intOption(argv, "lines", 3);
  const dir = await mkdtemp(path.join(tmpdir(), "petasan-bench-clones-"));
  try {
    const rows: string[][] = [["guest", "VMMs", "RSS MiB", "Pss MiB", "guest RAM Rss MiB", "guest RAM Pss MiB", "clones/boots Rss", "clones/boots Pss", "clones/boots guest RAM Pss"]];
    for (const name of GUESTS) {
      const kernel = await buildTestGuest(name);
      const { snap, mem } = await makeSnapshot(dir, name, kernel);
      const clones = await group(n, lines, async (i) => {
        const sock = path.join(dir, `${name}-clone-${i}.sock`);
        const p = await startApi(sock);
        const from = p.stdout().length;
        await expectNoContent(sock, "PUT", "/snapshot/load", { snapshot_path: snap, mem_backend: { backend_type: "File", backend_path: mem }, resume_vm: true });
        return { p, from };
      }, mem);
      const boots = await group(n, lines, async (i) => ({ p: await bootGuest(path.join(dir, `${name}-boot-${i}.sock`), kernel), from: 0 }));
      rows.push([name, `${n} boots`, mib(boots.rssKiB), mib(boots.pssKiB), mib(boots.ramRssKiB), mib(boots.ramPssKiB), "", "", ""]);
      rows.push([name, `${n} clones`, mib(clones.rssKiB), mib(clones.pssKiB), mib(clones.ramRssKiB), mib(clones.ramPssKiB),
        (clones.rssKiB / boots.rssKiB).toFixed(2), (clones.pssKiB / boots.pssKiB).toFixed(2), (clones.ramPssKiB / boots.ramPssKiB).toFixed(2)]);
      await rm(mem, { force: true });
    }
    console.log(`clones: ${n} VMMs at once per group, ${MEM_MIB} MiB guests, measured after ${lines} lines each; sums over the group\n\n${formatTable(rows)}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`clones: ${e instanceof BenchError ? e.message : ((e as Error).stack ?? e)}\n`);
    process.exit(1);
  },
);
