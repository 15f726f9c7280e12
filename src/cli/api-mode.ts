/**
 * `petasan --api-sock PATH` / `petasan --config-file FILE [--no-api]`: Firecracker's way of running one
 * microVM per process. The API (if any) is served from the start; the VM is built on InstanceStart, or at
 * once from the config file. The guest's serial console is on stdout/stdin. The process ends, as
 * Firecracker's does, when the guest ends: exit code 0 when it reset or powered off, non-zero on a vCPU
 * fault or VMM error. SIGINT/SIGTERM stop the VM and end the process with 0. The socket is removed at exit.
 */
import { readFile } from "node:fs/promises";
import { startApiServer, type ApiServer } from "../api/index.js";
import { loadConfigFile, VmResources, type VmConfig } from "../config/index.js";
import { ApiVmmBackend } from "../vmm/api-backend.js";
import { MetricsRecorder } from "../vmm/metrics.js";
import type { VmExit } from "../vmm/vmm.js";
import { prestartWorkers } from "../vmm/warm-workers.js";
import { API_MODE_USAGE, ApiModeUsageError, EXIT_GENERIC_ERROR, parseApiModeArgs, type ApiModeArgs } from "./api-mode-args.js";
import { MeteredController } from "./api-request-metrics.js";
import { attachConsole, type AttachedConsole } from "./console.js";

type ServeArgs = Extract<ApiModeArgs, { kind: "serve" }>;

function say(line: string): void {
  process.stderr.write(`petasan: ${line}\n`);
}

export async function runApiMode(argv: string[]): Promise<number> {
  let args: ApiModeArgs;
  try {
    args = parseApiModeArgs(argv);
  } catch (error) {
    if (!(error instanceof ApiModeUsageError)) throw error;
    say(error.message);
    process.stderr.write(`${API_MODE_USAGE}\n`);
    return error.exitCode;
  }
  switch (args.kind) {
    case "help":
      process.stdout.write(`${API_MODE_USAGE}\n`);
      return 0;
    case "version":
      process.stdout.write(`petasan v${await petasanVersion()}\n`);
      return 0;
    case "serve":
      return serve(args);
  }
}

async function serve(args: ServeArgs): Promise<number> {
  let resources: VmResources;
  try {
    resources = await initialResources(args);
  } catch (error) {
    say((error as Error).message);
    return EXIT_GENERIC_ERROR;
  }

  let settle!: (exitCode: number) => void;
  const ended = new Promise<number>((resolve) => (settle = resolve));
  let console: AttachedConsole | undefined;
  const metrics = new MetricsRecorder(args.instanceId);
  const backend = new ApiVmmBackend({
    serialOutputFd: 1,
    defaultLogFd: 2,
    metrics,
    onStarted: () => {
      console = attachConsole(process.stdin, {
        input: (bytes) => backend.serialInput(bytes),
        quit: () => void backend.stop("quit from the console (Ctrl-A x)"),
      });
    },
    onExit: (exit: VmExit) => {
      controller.vmStopped();
      if (exit.exitCode !== 0) say(`microVM failed: ${exit.message}`);
      settle(exit.exitCode);
    },
  });
  const controller = new MeteredController(
    { backend, vmmVersion: await petasanVersion(), instanceId: args.instanceId, resources },
    metrics,
  );

  let server: ApiServer | undefined;
  if (args.apiSocketPath !== undefined) {
    try {
      server = await startApiServer({ socketPath: args.apiSocketPath, controller, maxPayloadBytes: args.maxPayloadBytes });
    } catch (error) {
      say((error as Error).message);
      return EXIT_GENERIC_ERROR;
    }
    // The VM's threads start while the client configures it, so InstanceStart and /snapshot/load need not wait
    // for them (bench/snapshot.ts: restore ~40 ms instead of ~200).
    if (args.configFile === undefined) prestartWorkers({ devices: 1, vcpu: 1 });
  }

  // Before boot there is nothing to stop; after, the VM's end settles the exit code (0 for "stopped").
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.phase === "Configuring") settle(0);
    else void backend.stop(`stopped by ${signal}`);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  if (args.configFile !== undefined) {
    const started = await controller.handle({ kind: "instanceStart" });
    if (!started.ok) {
      say(started.error.faultMessage);
      settle(EXIT_GENERIC_ERROR);
    }
  }

  const exitCode = await ended;
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
  console?.detach();
  await server?.close();
  metrics.close();
  return exitCode;
}

/**
 * The config file's resources (or none), with the logger and metrics flags under them: as in Firecracker,
 * the flags configure first and the file's `logger` fields override theirs; the file's `metrics` wins.
 */
async function initialResources(args: ServeArgs): Promise<VmResources> {
  const config: VmConfig | undefined = args.configFile === undefined ? undefined : await loadConfigFile(args.configFile);
  const resources = config === undefined ? new VmResources() : VmResources.fromConfig(config);
  if (Object.keys(args.logger).length > 0 || config?.logger !== undefined) {
    resources.setLogger({ ...args.logger, ...config?.logger });
  }
  if (args.metricsPath !== undefined && config?.metrics === undefined) {
    resources.setMetrics({ metrics_path: args.metricsPath, emit_id: false });
  }
  return resources;
}

/** package.json's version: this file runs from dist/src/cli/, three levels below the package root. */
async function petasanVersion(): Promise<string> {
  const manifest = JSON.parse(await readFile(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string };
  return manifest.version;
}
