/**
 * Memory footprint of petasan against QEMU microvm, booting the same guest in the same run.
 *
 *   node dist/bench/footprint.js [--vms N] [--memory-mib M] [--runs R]
 *
 * The guest: the default guest (ensureDefaultGuest: the PVH vmlinux and the small initramfs), 1 vCPU, M MiB (128),
 * with `bench.mode=idle` on its command line: its init prints "IDLE" and sleeps 5 s. Each process is read from
 * /proc/<pid>/smaps 1 s after the guest printed IDLE (smaps-footprint.ts): private pages of anonymous mappings
 * beyond guest RAM (guest RAM's mapping, whose size is known, left out), private and shared pages of file
 * mappings (the node or qemu binary and libraries), and VmRSS.
 *   - petasan run (the CLI): one VM in its own process;
 *   - the library (footprint-vms.ts): N VMs booted one after the other in one process with createVm, each paused
 *     once idle (a paused VM keeps its threads and memory; pausing keeps it from rebooting while the next boots),
 *     read with 1 and with N VMs: the difference over N-1 is what each additional VM costs;
 *   - QEMU microvm (qemu-system-x86_64 -M microvm, Debian's package), network off, serial to a file; skipped with
 *     one line when qemu-system-x86_64 is not installed;
 *   - Node's floor: `node -e setTimeout`, for scale.
 * --baseline DIR: also the CLI and library rows of another petasan checkout, built (e.g. an older commit:
 *   `git archive <commit> | tar -x -C DIR`, node_modules linked, `npx tsc -p .`), in the same run: a change's before
 *   and after.
 * Ratio columns: petasan / QEMU. A single QEMU's own binary pages count as private (no other qemu process maps
 * them), while node's are shared with this bench's own process; compare the private anonymous column first.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { ensureDefaultGuest } from "../src/guest/default-guest.js";
import { detectHostVirtualization, EMULATED_RING0_KERNEL_ARGS } from "../src/arch/x86/host.js";
import { BenchError } from "./bench-error.js";
import { kvmUnavailableReason } from "./kvm-check.js";
import { readFootprint, type Footprint } from "./smaps-footprint.js";
import { formatTable, intOption, median } from "./stats.js";

const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const VMS_CHILD = fileURLToPath(new URL("./footprint-vms.js", import.meta.url));
/** The init's line once idle (the guest's tty turns "\n" into "\r\n"). */
const IDLE = /IDLE\r?\n/;
/** After IDLE the guest sleeps 5 s; the process is read this long after IDLE. */
const SETTLE_MS = 1000;
/** A Linux boot here takes 30-60 s of emulated ring 0 (KVM-HERE.md), more when the machine is busy. */
const BOOT_TIMEOUT_MS = 300_000;

interface Guest {
  kernel: string;
  initrd: string;
  cmdline: string;
}

/** A child process whose output (stdout, or a file it writes) is watched for a marker. */
class Watched {
  private output = "";
  readonly ended: Promise<number | string | null>;

  constructor(readonly child: ChildProcess, private readonly label: string) {
    child.stdout?.setEncoding("latin1").on("data", (d: string) => (this.output += d));
    let stderr = "";
    child.stderr?.setEncoding("latin1").on("data", (d: string) => (stderr = (stderr + d).slice(-4000)));
    this.ended = new Promise((resolve) => {
      child.on("error", (e) => resolve(e.message));
      child.on("close", (code, signal) => resolve(code ?? signal));
    });
    void this.ended.then((how) => (this.endedHow = `${how}; stderr:\n${stderr}`));
  }

  endedHow?: string;

  /** Waits until `marker` appears in the output read by `read` (stdout by default) after `from` characters. */
  async waitFor(marker: RegExp, read: () => Promise<string> = async () => this.output, from = 0): Promise<number> {
    const deadline = Date.now() + BOOT_TIMEOUT_MS;
    for (;;) {
      const text = await read();
      const found = marker.exec(text.slice(from));
      if (found) return from + found.index + found[0].length;
      if (this.endedHow !== undefined) throw new BenchError(`${this.label} ended (${this.endedHow}) before printing ${marker}; output:\n${text.slice(-2000)}`);
      if (Date.now() > deadline) throw new BenchError(`${this.label}: no ${marker} within ${BOOT_TIMEOUT_MS} ms; output:\n${text.slice(-2000)}`);
      await sleep(50);
    }
  }

  async kill(): Promise<void> {
    if (this.endedHow === undefined) this.child.kill("SIGKILL");
    await this.ended;
  }
}

async function petasanCli(guest: Guest, memMiB: number, cli = CLI): Promise<Footprint> {
  const child = spawn(process.execPath, [cli, "run", "--kernel", guest.kernel, "--initrd", guest.initrd, "--cmdline", guest.cmdline,
    "--memory", `${memMiB}M`, "--serial", "stdio"], { stdio: ["ignore", "pipe", "pipe"] });
  const w = new Watched(child, "petasan run");
  try {
    await w.waitFor(IDLE);
    await sleep(SETTLE_MS);
    return await readFootprint(child.pid!, memMiB << 20, 1);
  } finally {
    await w.kill();
  }
}

/** Footprints of one process with 1, 2, ... `count` VMs (index k-1: k VMs). */
async function petasanLibrary(guest: Guest, memMiB: number, count: number, vmsChild = VMS_CHILD): Promise<Footprint[]> {
  const child = spawn(process.execPath, [vmsChild, guest.kernel, guest.initrd, guest.cmdline, String(memMiB), String(count), String(SETTLE_MS)],
    { stdio: ["pipe", "pipe", "pipe"] });
  child.stdin!.on("error", () => {});
  const w = new Watched(child, "footprint-vms (library)");
  const out: Footprint[] = [];
  try {
    let from = 0;
    for (let k = 1; k <= count; k++) {
      from = await w.waitFor(new RegExp(`READY ${k}\\n`), undefined, from);
      out.push(await readFootprint(child.pid!, memMiB << 20, k));
      child.stdin!.write("next\n");
    }
    await w.ended;
    return out;
  } finally {
    await w.kill();
  }
}

function qemuBinary(): string | undefined {
  const r = spawnSync("qemu-system-x86_64", ["--version"], { stdio: "ignore" });
  return r.error || r.status !== 0 ? undefined : "qemu-system-x86_64";
}

async function qemuMicrovm(qemu: string, guest: Guest, memMiB: number): Promise<Footprint> {
  const dir = await mkdtemp(path.join(tmpdir(), "petasan-footprint-"));
  const serial = path.join(dir, "serial.txt");
  // As KVM-HERE.md: -cpu qemu64,-cx16 (cx16 is what the emulator lacks; -cpu host aborts here). -nodefaults: no
  // NIC, no VGA, no other default device; the console on a file; -no-reboot: the guest's reboot ends QEMU.
  const child = spawn(qemu, ["-M", "microvm", "-enable-kvm", "-cpu", "qemu64,-cx16", "-smp", "1", "-m", `${memMiB}M`,
    "-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none", "-serial", `file:${serial}`, "-net", "none", "-no-reboot",
    "-kernel", guest.kernel, "-initrd", guest.initrd, "-append", guest.cmdline], { stdio: ["ignore", "pipe", "pipe"] });
  const w = new Watched(child, "qemu microvm");
  try {
    await w.waitFor(IDLE, () => readFile(serial, "latin1").catch(() => ""));
    await sleep(SETTLE_MS);
    return await readFootprint(child.pid!, memMiB << 20, 1);
  } finally {
    await w.kill();
    await rm(dir, { recursive: true, force: true });
  }
}

async function nodeFloor(): Promise<Footprint> {
  const child = spawn(process.execPath, ["-e", "setTimeout(()=>{},3000)"], { stdio: "ignore" });
  const w = new Watched(child, "node -e");
  try {
    await sleep(SETTLE_MS);
    return await readFootprint(child.pid!, 0, 0);
  } finally {
    await w.kill();
  }
}

/** The footprint of `more` minus `less`, over `per` (what each VM added). */
function perVm(more: Footprint, less: Footprint, per: number): Footprint {
  const d = {} as Footprint;
  for (const key of Object.keys(more) as (keyof Footprint)[]) d[key] = (more[key] - less[key]) / per;
  return d;
}

function medianFootprint(list: Footprint[]): Footprint {
  const m = {} as Footprint;
  for (const key of Object.keys(list[0]) as (keyof Footprint)[]) m[key] = median(list.map((f) => f[key]));
  return m;
}

async function main(argv: string[]): Promise<void> {
  const unavailable = kvmUnavailableReason();
  if (unavailable) {
    console.log(`footprint: skipped, ${unavailable}`);
    return;
  }
  const vms = Math.max(2, intOption(argv, "vms", 2));
  const memMiB = intOption(argv, "memory-mib", 128);
  const runs = intOption(argv, "runs", 1);
  const baselineAt = argv.indexOf("--baseline");
  const baseline = baselineAt < 0 ? undefined : argv[baselineAt + 1];
  if (baselineAt >= 0 && baseline === undefined) throw new BenchError("--baseline needs a directory");
  const qemu = qemuBinary();
  const files = await ensureDefaultGuest({ onProgress: (line) => process.stderr.write(`footprint: ${line}\n`) });
  const hostArgs = detectHostVirtualization().hardware ? [] : EMULATED_RING0_KERNEL_ARGS;
  const guest: Guest = { kernel: files.kernel, initrd: files.initrd, cmdline: [files.cmdline, ...hostArgs, "bench.mode=idle"].join(" ") };

  const cli: Footprint[] = [];
  const lib: Footprint[][] = [];
  const qemuRuns: Footprint[] = [];
  const floor: Footprint[] = [];
  const baseCli: Footprint[] = [];
  const baseLib: Footprint[][] = [];
  for (let i = 0; i < runs; i++) {
    floor.push(await nodeFloor());
    cli.push(await petasanCli(guest, memMiB));
    lib.push(await petasanLibrary(guest, memMiB, vms));
    if (qemu) qemuRuns.push(await qemuMicrovm(qemu, guest, memMiB));
    if (baseline) {
      baseCli.push(await petasanCli(guest, memMiB, path.resolve(baseline, "dist/src/cli/main.js")));
      baseLib.push(await petasanLibrary(guest, memMiB, vms, path.resolve(baseline, "dist/bench/footprint-vms.js")));
    }
  }
  const libOne = medianFootprint(lib.map((l) => l[0]));
  const libAll = medianFootprint(lib.map((l) => l[vms - 1]));
  const extra = medianFootprint(lib.map((l) => perVm(l[vms - 1], l[0], vms - 1)));
  const q = qemu ? medianFootprint(qemuRuns) : undefined;

  const mib = (kib: number) => (kib / 1024).toFixed(1);
  const ratio = (a: number, b: number | undefined) => (b === undefined || b === 0 ? "-" : (a / b).toFixed(2));
  const header = ["process", "private anon MiB (beyond guest RAM)", "private file MiB", "(of it COW)", "shared file MiB",
    "RSS MiB", "guest RAM resident MiB", "threads", "anon x QEMU", "private file x QEMU", "shared file x QEMU", "RSS x QEMU"];
  const row = (label: string, f: Footprint, vsQemu: boolean): string[] => [
    label, mib(f.privateAnonKiB), mib(f.privateFileKiB), mib(f.cowKiB), mib(f.sharedFileKiB), mib(f.rssKiB), mib(f.guestKiB),
    f.threads.toFixed(0),
    ...(vsQemu ? [ratio(f.privateAnonKiB, q?.privateAnonKiB), ratio(f.privateFileKiB, q?.privateFileKiB),
      ratio(f.sharedFileKiB, q?.sharedFileKiB), ratio(f.rssKiB, q?.rssKiB)] : ["", "", "", ""]),
  ];
  const rows = [header,
    row("petasan run (CLI), 1 VM", medianFootprint(cli), true),
    row("petasan library, 1 VM in the process", libOne, true),
    row(`petasan library, ${vms} VMs in the process`, libAll, false),
    row("petasan library, each additional VM", extra, true),
    ...(q ? [row("QEMU microvm (one process per VM)", q, true)] : []),
    ...(baseline ? [
      row(`baseline ${baseline}: petasan run (CLI), 1 VM`, medianFootprint(baseCli), true),
      row(`baseline ${baseline}: library, each additional VM`, medianFootprint(baseLib.map((l) => perVm(l[vms - 1], l[0], vms - 1))), true),
    ] : []),
    row("node -e setTimeout (Node's floor)", medianFootprint(floor), false),
  ];
  console.log(`Footprint: default guest idle (bench.mode=idle), 1 vCPU, ${memMiB} MiB each; ${runs === 1 ? "one run" : `median of ${runs} runs`}`);
  console.log(formatTable(rows));
  if (!qemu) console.log("QEMU microvm: skipped, qemu-system-x86_64 is not installed (apt-get install qemu-system-x86); the ratio columns are empty");
  const merged = Math.max(...cli.map((f) => f.guestMergedKiB), ...lib.flat().map((f) => f.guestMergedKiB));
  if (merged > 0) console.log(`(a guest RAM mapping had up to ${merged} KiB of neighbouring anonymous memory merged into it; it counts as guest RAM above)`);
  const one = medianFootprint(cli).privateAnonKiB;
  console.log(`goal: private anon beyond guest RAM <= 16 MiB for 1 VM in its own process: ${mib(one)} MiB (CLI), ${mib(libOne.privateAnonKiB)} MiB (library): ${one <= 16 * 1024 ? "met" : `not met, ${mib(one - 16 * 1024)} MiB over`}`);
  console.log(`goal: <= 8 MiB for each additional VM in the process: ${mib(extra.privateAnonKiB)} MiB: ${extra.privateAnonKiB <= 8 * 1024 ? "met" : `not met, ${mib(extra.privateAnonKiB - 8 * 1024)} MiB over`}`);
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`footprint: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
