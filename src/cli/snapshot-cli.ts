/**
 * The snapshot commands of the petasan CLI (Firecracker offers these through its API; API mode has them too):
 *   petasan restore DIR | --snapshot FILE --mem FILE [options]   run a VM restored from a snapshot
 *   petasan snapshot merge-memory --base FILE --diff FILE         apply a Diff memory file onto its base
 * and `petasan run --snapshot-dir DIR`, where Ctrl-A s on the console pauses the VM, writes DIR/vm.snap and
 * DIR/vm.mem (Full) and resumes it.
 */
import { closeSync, mkdirSync, openSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { LOG_LEVELS, loadSnapshot, mergeSnapshotMemory, type VirtualMachine } from "../lib/index.js";
import { attachConsole } from "./console.js";
import { SECCOMP_FLAGS_EXCLUSIVE, seccompChoice, seccompFilters } from "./seccomp-choice.js";
import { lockDownMainThread, lockDownProcessThreads } from "../lib/seccomp.js";
import { readMmdsData } from "./mmds-data.js";

export const RESTORE_USAGE = `usage: petasan restore DIR | --snapshot FILE --mem FILE [--serial stdio|file:PATH|none]
                       [--log-level LEVEL] [--track-dirty-pages] [--net-override ID=TAP]... [--snapshot-dir DIR]
                       [--vsock-override PATH] [--huge-pages Snapshot|None|Transparent|2M]
                       [--mmds-data FILE] [--no-seccomp | --seccomp-filter FILE]
  DIR                  a directory holding vm.snap and vm.mem (what Ctrl-A s with --snapshot-dir writes)
  --snapshot FILE      the state file;  --mem FILE  the memory file (mapped copy-on-write, never changed)
  --track-dirty-pages  record dirtied pages, for Diff snapshots of the restored VM (API mode)
  --net-override ID=TAP  use tap TAP for interface ID instead of the snapshot's
  --vsock-override PATH  the vsock device listens on PATH instead of the snapshot's uds_path (which must not exist)
  --huge-pages         the restored RAM's pages (default Snapshot: as saved); 2M is refused, as by Firecracker
                       without a Uffd backend: restore a VM that ran on 2M pages with None or Transparent
  --snapshot-dir DIR   Ctrl-A s writes a new snapshot of the restored VM here
  --mmds-data FILE     JSON for the MMDS data store (a snapshot holds none; the snapshot's VM needs an mmds-config)
  --no-seccomp, --seccomp-filter FILE   as petasan run: seccomp filters are on by default
The drives are reopened by the paths in the snapshot: their contents must be what they were when it was taken.`;

export const SNAPSHOT_USAGE = `usage: petasan snapshot merge-memory --base FILE --diff FILE
  applies a Diff snapshot's memory file onto the memory file it was taken on top of (Full, or already merged);
  then load the Diff's state file with the merged memory file`;

function say(line: string): void {
  process.stderr.write(`petasan: ${line}\n`);
}

/** Ctrl-A s: pause, write DIR/vm.snap and DIR/vm.mem, resume; says what it did on stderr. */
export function snapshotToDir(vm: VirtualMachine, dir: string): void {
  void (async () => {
    try {
      mkdirSync(dir, { recursive: true });
      await vm.pause();
      try {
        await vm.snapshot({ snapshotPath: path.join(dir, "vm.snap"), memFilePath: path.join(dir, "vm.mem"), type: "Full" });
      } finally {
        vm.resume();
      }
      say(`snapshot written to ${dir} (restore it with: petasan restore ${dir})`);
    } catch (e) {
      say(`snapshot failed: ${(e as Error).message}`);
    }
  })();
}

/**
 * SIGINT/SIGTERM stop `vm`, from before its start: its guest may run (and a supervisor see it running) before start()
 * resolves, and a signal in between must not kill the process with the VM half up. Returns the release.
 */
export function stopOnSignals(vm: VirtualMachine): () => void {
  const onSignal = (sig: NodeJS.Signals) => void vm.stop(`stopped by ${sig}`);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return () => {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  };
}

/** The --serial file is ours to close (the VM only borrowed it); stdout is not. */
function closeSerialFile(fd: number | null): void {
  if (fd !== null && fd !== 1) closeSync(fd);
}

/**
 * `petasan run` and `petasan restore` when their VM did not start (or restore): the error in one line, the signal
 * handlers and the --serial file released. Returns the exit code.
 */
export function startFailed(e: unknown, opts: { serialFd: number | null; releaseSignals?: () => void }): number {
  say((e as Error).message);
  opts.releaseSignals?.();
  closeSerialFile(opts.serialFd);
  return 1;
}

/**
 * What `petasan run` and `petasan restore` do once their VM runs: the console on stdin when the serial port is on
 * stdio (Ctrl-A s snapshots to `snapshotDir` when given); at its end the signal handlers (`releaseSignals`, from
 * stopOnSignals) go, the serial file is closed and the end said on stderr. Resolves with the VM's exit code.
 */
export async function attendVm(vm: VirtualMachine, opts: { stdioConsole: boolean; serialFd: number | null; snapshotDir?: string; releaseSignals: () => void }): Promise<number> {
  const { snapshotDir } = opts;
  const console = opts.stdioConsole
    ? attachConsole(process.stdin, {
      input: (b) => vm.console.write(b),
      quit: () => void vm.stop("quit from the console (Ctrl-A x)"),
      ...(snapshotDir ? { snapshot: () => snapshotToDir(vm, snapshotDir) } : {}),
    })
    : undefined;
  const exit = await vm.exited;
  console?.detach();
  opts.releaseSignals();
  closeSerialFile(opts.serialFd);
  if (exit.exitCode !== 0) say(`VM failed: ${exit.message}`);
  else if (exit.reason !== "guest-reset") say(exit.message);
  return exit.exitCode;
}

export async function runSnapshotCommand(argv: string[]): Promise<number> {
  if (argv[0] !== "merge-memory") {
    process.stderr.write(`${SNAPSHOT_USAGE}\n`);
    return 2;
  }
  let values;
  try {
    ({ values } = parseArgs({ args: argv.slice(1), strict: true, options: { base: { type: "string" }, diff: { type: "string" } } }));
  } catch (e) {
    say((e as Error).message);
    return 2;
  }
  if (!values.base || !values.diff) {
    process.stderr.write(`${SNAPSHOT_USAGE}\n`);
    return 2;
  }
  try {
    const bytes = mergeSnapshotMemory(values.base, values.diff);
    say(`merged ${bytes} bytes of ${values.diff} into ${values.base}`);
    return 0;
  } catch (e) {
    say((e as Error).message);
    return 1;
  }
}

export async function runRestoreCommand(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: true,
      options: {
        snapshot: { type: "string" },
        mem: { type: "string" },
        serial: { type: "string", default: "stdio" },
        "log-level": { type: "string", default: "Warning" },
        "track-dirty-pages": { type: "boolean", default: false },
        "net-override": { type: "string", multiple: true, default: [] },
        "vsock-override": { type: "string" },
        "huge-pages": { type: "string", default: "Snapshot" },
        "snapshot-dir": { type: "string" },
        "mmds-data": { type: "string" },
        "no-seccomp": { type: "boolean" },
        "seccomp-filter": { type: "string" },
      },
    });
  } catch (e) {
    say((e as Error).message);
    process.stderr.write(`${RESTORE_USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const dir = positionals[0];
  const snapshotPath = values.snapshot ?? (dir ? path.join(dir, "vm.snap") : undefined);
  const memFilePath = values.mem ?? (dir ? path.join(dir, "vm.mem") : undefined);
  if (!snapshotPath || !memFilePath || positionals.length > 1) {
    process.stderr.write(`${RESTORE_USAGE}\n`);
    return 2;
  }
  const logLevel = LOG_LEVELS.find((l) => l.toLowerCase() === values["log-level"].toLowerCase());
  if (!logLevel) {
    say(`--log-level: "${values["log-level"]}" is not one of ${LOG_LEVELS.join(", ")}`);
    return 2;
  }
  if (values["no-seccomp"] && values["seccomp-filter"] !== undefined) {
    say(SECCOMP_FLAGS_EXCLUSIVE);
    return 2;
  }
  const hugePages = (["Snapshot", "None", "Transparent", "2M"] as const).find((h) => h === values["huge-pages"]);
  if (!hugePages) {
    say(`--huge-pages: "${values["huge-pages"]}" is not Snapshot, None, Transparent or 2M`);
    return 2;
  }
  const networkOverrides = [];
  for (const o of values["net-override"]) {
    const [iface_id, host_dev_name] = o.split("=");
    if (!iface_id || !host_dev_name) {
      say(`--net-override: "${o}" is not ID=TAP`);
      return 2;
    }
    networkOverrides.push({ iface_id, host_dev_name });
  }
  let serialFd: number | null = null;
  const serial = values.serial;
  if (serial === "stdio") serialFd = 1;
  else if (serial.startsWith("file:") && serial.length > 5) {
    try {
      serialFd = openSync(serial.slice(5), "a");
    } catch (e) {
      say(`--serial: cannot open ${serial.slice(5)}: ${(e as Error).message}`);
      return 1;
    }
  } else if (serial !== "none") {
    say(`--serial: "${serial}" is not stdio, none or file:PATH`);
    return 2;
  }

  let vm: VirtualMachine;
  let releaseSignals: (() => void) | undefined;
  try {
    const seccomp = await seccompFilters(seccompChoice(values["no-seccomp"], values["seccomp-filter"]));
    const mmds = values["mmds-data"] === undefined ? undefined : await readMmdsData(values["mmds-data"]);
    vm = loadSnapshot(
      { snapshotPath, memFilePath, trackDirtyPages: values["track-dirty-pages"], networkOverrides, vsockUdsPath: values["vsock-override"], hugePages },
      { console: serialFd === null ? "none" : { fd: serialFd }, log: { fd: 2, level: logLevel }, seccomp, ...(mmds !== undefined && { mmds }) },
    );
    releaseSignals = stopOnSignals(vm);
    // As petasan run's --mmds-data needs --mmds-config: data nobody could read is refused, not dropped.
    if (mmds !== undefined && vm.config["mmds-config"] === undefined) throw new Error("--mmds-data: the snapshot's VM has no mmds-config");
    // As petasan run: the process filter before the VM's threads exist, theirs as they start, the main thread's after.
    if (seccomp !== undefined) lockDownProcessThreads(seccomp);
    // A failed start releases what it had built.
    await vm.start();
    lockDownMainThread(seccomp);
  } catch (e) {
    return startFailed(e, { serialFd, releaseSignals });
  }
  return attendVm(vm, { stdioConsole: serial === "stdio", serialFd, snapshotDir: values["snapshot-dir"], releaseSignals });
}
