#!/usr/bin/env node
/**
 * The petasan command: `run` boots a VM; `guest build` prepares the default guest; Firecracker's own flags
 * (--api-sock, --config-file, ...) run the Firecracker-compatible mode.
 */
import { runCommand } from "./run.js";
import { runApiMode } from "./api-mode.js";
import { API_MODE_USAGE } from "./api-mode-args.js";
import { runGuestBuild } from "../guest/cli.js";
import { runRestoreCommand, runSnapshotCommand, RESTORE_USAGE } from "./snapshot-cli.js";
import { runJailer } from "../jailer/index.js";
import { runConsoleCommand } from "./console-command.js";

const USAGE = `usage: petasan run [options]      boot a VM (petasan run --help for options)
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

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const isHelp = command === "--help" || command === "-h";
  if (command?.startsWith("-") && !isHelp) return runApiMode(argv);
  switch (command) {
    case "run":
      if (rest.includes("--help") || rest.includes("-h")) {
        const { RUN_USAGE } = await import("./run-args.js");
        process.stdout.write(`${RUN_USAGE}\n`);
        return 0;
      }
      return runCommand(rest);
    case "restore":
      if (rest.includes("--help") || rest.includes("-h")) {
        process.stdout.write(`${RESTORE_USAGE}\n`);
        return 0;
      }
      return runRestoreCommand(rest);
    case "snapshot":
      return runSnapshotCommand(rest);
    case "jailer":
      return runJailer(rest);
    case "console":
      return runConsoleCommand(rest);
    case "guest":
      if (rest[0] === "build") return runGuestBuild(rest.slice(1));
      break;
    case "--help":
    case "-h":
    case "help":
      process.stdout.write(`${USAGE}\n`);
      return 0;
  }
  process.stderr.write(`petasan: unknown command "${argv.join(" ")}"\n${USAGE}\n`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`petasan: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
