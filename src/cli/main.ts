#!/usr/bin/env node
/**
 * The petasan command: `run` boots a VM; `guest build` prepares the default guest; Firecracker's own flags
 * (--api-sock, --config-file, ...) run the Firecracker-compatible mode.
 */
// Each command loads its own modules when it runs (dynamic imports below): `petasan run` does not load the API
// server, and its VM's threads start booting before this thread has loaded the rest of petasan.
import { discardWarmWorkers, prestartWorkers } from "../lib/prestart.js";

async function usage(): Promise<string> {
  const { API_MODE_USAGE } = await import("./api-mode-args.js");
  return `usage: petasan run [options]      boot a VM (petasan run --help for options)
       petasan guest build        build and cache the default guest
       petasan restore DIR | --snapshot FILE --mem FILE [options]
                                  run a VM restored from a snapshot (petasan restore --help)
       petasan snapshot merge-memory --base FILE --diff FILE
                                  apply a Diff snapshot's memory file onto its base
       petasan jailer --id ID --uid UID --gid GID [options] [-- VMM ARGS]
                                  run the VMM jailed (petasan jailer --help)
       petasan console [options]  a web console for VMs (petasan console --help for options)
       petasan --api-sock PATH | --config-file FILE [--no-api] [options]
                                  Firecracker-compatible mode, options below

${API_MODE_USAGE}`;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const isHelp = command === "--help" || command === "-h";
  if (command?.startsWith("-") && !isHelp) return (await import("./api-mode.js")).runApiMode(argv);
  switch (command) {
    case "run":
      if (rest.includes("--help") || rest.includes("-h")) {
        const { RUN_USAGE } = await import("./run-args.js");
        process.stdout.write(`${RUN_USAGE}\n`);
        return 0;
      }
      // Starting a worker (an isolate, Node's bootstrap, koffi) takes ~100 ms: the device thread and the boot
      // vCPU's thread boot while this thread loads petasan and builds the VM (further vCPUs start when needed).
      prestartWorkers({ devices: 1, vcpu: 1 });
      return (await import("./run.js")).runCommand(rest);
    case "restore": {
      // As for run, and more so: starting the threads is most of a restore's time (README, Snapshots: Performance).
      if (!rest.includes("--help") && !rest.includes("-h")) prestartWorkers({ devices: 1, vcpu: 1 });
      const { runRestoreCommand, RESTORE_USAGE } = await import("./snapshot-cli.js");
      if (rest.includes("--help") || rest.includes("-h")) {
        process.stdout.write(`${RESTORE_USAGE}\n`);
        return 0;
      }
      return runRestoreCommand(rest);
    }
    case "snapshot":
      return (await import("./snapshot-cli.js")).runSnapshotCommand(rest);
    case "jailer":
      return (await import("../jailer/index.js")).runJailer(rest);
    case "console":
      return (await import("./console-command.js")).runConsoleCommand(rest);
    case "guest":
      if (rest[0] === "build") return (await import("../guest/cli.js")).runGuestBuild(rest.slice(1));
      break;
    case "--help":
    case "-h":
    case "help":
      process.stdout.write(`${await usage()}\n`);
      return 0;
  }
  process.stderr.write(`petasan: unknown command "${argv.join(" ")}"\n${await usage()}\n`);
  return 2;
}

// The threads started ahead that no VM took are ended before the process is (see discardWarmWorkers).
main(process.argv.slice(2)).then(
  async (code) => {
    await discardWarmWorkers();
    process.exit(code);
  },
  async (e) => {
    process.stderr.write(`petasan: ${(e as Error).stack ?? e}\n`);
    await discardWarmWorkers();
    process.exit(1);
  },
);
