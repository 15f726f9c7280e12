/** `petasan run`: build a VM from flags, attach the console, and exit with the VM's exit code. */
import { openSync } from "node:fs";
import { createVm, type VirtualMachine } from "../lib/index.js";
import { readMmdsData } from "./mmds-data.js";
import { detectHostVirtualization } from "../arch/x86/host.js";
import { ensureDefaultGuest } from "../guest/default-guest.js";
import type { VmConfig } from "../config/vm-config.js";
import { parseRunArgs, RUN_USAGE, UsageError, type RunArgs } from "./run-args.js";
import { defaultGuestBootSource } from "./default-guest-boot.js";
import { attendVm, startFailed, stopOnSignals } from "./snapshot-cli.js";
import { seccompFilters } from "./seccomp-choice.js";
import { lockDownMainThread, lockDownProcessThreads } from "../lib/seccomp.js";

function say(line: string): void {
  process.stderr.write(`petasan: ${line}\n`);
}

/** The boot source: the user's kernel, or the default guest (built on first use) with this host's arguments. */
async function bootSource(args: RunArgs): Promise<VmConfig["boot-source"]> {
  if (args.kernel) {
    return { kernel_image_path: args.kernel, ...(args.cmdline !== undefined ? { boot_args: args.cmdline } : {}), ...(args.initrd ? { initrd_path: args.initrd } : {}) };
  }
  const guest = await ensureDefaultGuest({ onProgress: (line) => say(line) });
  const choice = defaultGuestBootSource(guest, args.cmdline, {
    hasRootDrive: args.config.drives.some((d) => d.is_root_device),
    hardwareVirtualization: detectHostVirtualization().hardware,
  });
  for (const note of choice.notes) say(note);
  return choice.bootSource;
}

export async function runCommand(argv: string[]): Promise<number> {
  let args: RunArgs;
  try {
    args = parseRunArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      say(e.message);
      process.stderr.write(`${RUN_USAGE}\n`);
      return 2;
    }
    throw e;
  }

  let serialFd: number | null = null;
  if (args.serial.kind === "stdio") serialFd = 1;
  else if (args.serial.kind === "file") {
    try {
      serialFd = openSync(args.serial.path, "a");
    } catch (e) {
      say(`--serial: cannot open ${args.serial.path}: ${(e as Error).message}`);
      return 1;
    }
  }

  let vm: VirtualMachine;
  let releaseSignals: (() => void) | undefined;
  try {
    const seccomp = await seccompFilters(args.seccomp);
    // The default guest may be built first (apt-get, make: other programs, before any filter).
    const config: VmConfig = { ...args.config, "boot-source": await bootSource(args) };
    const mmds = args.mmdsDataFile === undefined ? undefined : await readMmdsData(args.mmdsDataFile);
    // As in the Firecracker mode (api-mode.ts): the process filter on every thread before the VM's threads
    // exist, theirs on top as they start, and the main thread's once the VM runs.
    if (seccomp !== undefined) lockDownProcessThreads(seccomp);
    vm = createVm(config, {
      console: serialFd === null ? "none" : { fd: serialFd }, log: { fd: 2, level: args.logLevel }, host: args.host, seccomp,
      ...(mmds !== undefined && { mmds }),
    });
    releaseSignals = stopOnSignals(vm);
    // A failed start releases what it had built.
    await vm.start();
    lockDownMainThread(seccomp);
  } catch (e) {
    return startFailed(e, { serialFd, releaseSignals });
  }

  return attendVm(vm, { stdioConsole: args.serial.kind === "stdio", serialFd, snapshotDir: args.snapshotDir, releaseSignals });
}
