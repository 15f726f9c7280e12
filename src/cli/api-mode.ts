/**
 * `petasan --api-sock PATH` / `petasan --config-file FILE [--no-api]`: Firecracker's way of running one
 * microVM per process. The API (if any) is served from the start; the VM is built on InstanceStart, or at
 * once from the config file. The guest's serial console is on stdout/stdin. The process ends, as
 * Firecracker's does, when the guest ends: exit code 0 when it reset or powered off, non-zero on a vCPU
 * fault or VMM error. SIGINT/SIGTERM stop the VM and end the process with 0. The socket is removed at exit.
 * Seccomp is on unless --no-seccomp: the process filter on every thread before the API serves, each VM thread's
 * own as it starts, the main thread's once the VM runs (a denied call ends the process with 148).
 */
import { readFile } from "node:fs/promises";
import { HostFileError, nodeHostFiles, parseRequest, startApiServer, type ApiServer } from "../api/index.js";
import { FIRECRACKER_API_VERSION, loadConfigFile, parseJsonText, VmResources, type VmConfig } from "../config/index.js";
import { MetricsRecorder, prestartWorkers, warmUpSnapshotLoading, type VmExit } from "../lib/index.js";
import { ApiVmmBackend } from "./api-backend.js";
import { API_MODE_USAGE, ApiModeUsageError, EXIT_GENERIC_ERROR, parseApiModeArgs, type ApiModeArgs, type ProcessStartTimes } from "./api-mode-args.js";
import { MeteredController } from "./api-request-metrics.js";
import { attachConsole, type AttachedConsole } from "./console.js";
import { lockDownMainThread, lockDownProcessThreads, type SeccompFilters } from "../lib/seccomp.js";
import { seccompFilters } from "./seccomp-choice.js";

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
      // Firecracker prints "Firecracker vX.Y.Z" first; clients (Kata Containers) parse that line.
      process.stdout.write(`Firecracker v${FIRECRACKER_API_VERSION}\npetasan v${await petasanVersion()}\n`);
      return 0;
    case "unsupported":
      say(args.message);
      return EXIT_GENERIC_ERROR;
    case "serve":
      return serve(args);
  }
}

async function serve(args: ServeArgs): Promise<number> {
  for (const warning of args.warnings) say(`warning: ${warning}`);
  let resources: VmResources;
  let seccomp: SeccompFilters | undefined;
  try {
    resources = await initialResources(args);
    seccomp = await seccompFilters(args.seccomp);
  } catch (error) {
    say((error as Error).message);
    return EXIT_GENERIC_ERROR;
  }

  let settle!: (exitCode: number) => void;
  const ended = new Promise<number>((resolve) => (settle = resolve));
  let console: AttachedConsole | undefined;
  const metrics = new MetricsRecorder(args.instanceId);
  // The main thread narrows itself once the VM's threads exist (Firecracker's vmm thread installs its filter once
  // the microVM is built) and its API socket listens: a config file boots before the socket is made.
  let vmStarted = false;
  let apiListening = args.apiSocketPath === undefined;
  const narrowMainThread = () => {
    if (vmStarted && apiListening) lockDownMainThread(seccomp);
  };
  const backend = new ApiVmmBackend({
    serialOutputFd: 1,
    defaultLogFd: 2,
    metrics,
    seccomp,
    onStarted: () => {
      vmStarted = true;
      narrowMainThread();
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

  // Before any VM thread exists and before the API serves anyone: every thread Node and V8 started gets the
  // process filter (the union of the thread lists); VM threads created later narrow it.
  if (seccomp !== undefined) lockDownProcessThreads(seccomp);

  // Before boot there is nothing to stop; after, the VM's end settles the exit code (0 for "stopped").
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.phase === "Configuring") settle(0);
    else void backend.stop(`stopped by ${signal}`);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  // With a config file the VM boots before the API serves, as in Firecracker (whose VMM thread answers no request
  // until build_microvm_from_json is done): a client that sees the socket sees the VM Running.
  let bootFailed = false;
  if (args.configFile !== undefined) {
    const started = await controller.handle({ kind: "instanceStart" });
    if (!started.ok) {
      say(started.error.faultMessage);
      settle(EXIT_GENERIC_ERROR);
      bootFailed = true;
    }
  }

  let server: ApiServer | undefined;
  if (args.apiSocketPath !== undefined && !bootFailed) {
    try {
      server = await startApiServer({ socketPath: args.apiSocketPath, controller, maxPayloadBytes: args.maxPayloadBytes });
      recordStartupTimes(metrics, args.startTimes);
      // The VM's threads start while the client configures it, so InstanceStart and /snapshot/load need not wait
      // for them (bench/snapshot.ts: restore ~40 ms instead of ~200).
      if (args.configFile === undefined) {
        prestartWorkers({ devices: 1, vcpu: 1 });
        setImmediate(warmUpLoadPath);
      }
      apiListening = true;
      narrowMainThread();
    } catch (error) {
      say((error as Error).message);
      // Settled first: a VM the config file booted ends with the process, and its exit code is not the one to report.
      settle(EXIT_GENERIC_ERROR);
      if (controller.phase !== "Configuring") await backend.stop("the API socket could not be served");
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
  // Firecracker opens --log-path and --metrics-path before anything else (main.rs LOGGER.update, init_metrics).
  await openAtStart(args.logger.log_path, "Could not initialize logger: Failed to open target file:");
  await openAtStart(args.metricsPath, "Could not initialize metrics: Cannot initialize the metrics system due to bad user input:");
  const config: VmConfig | undefined = args.configFile === undefined ? undefined : await loadConfigFile(args.configFile);
  const sizing = { mmdsSizeLimit: args.mmdsSizeLimit };
  const resources = config === undefined ? new VmResources(sizing) : VmResources.fromConfig(config, sizing);
  if (args.metadataFile !== undefined) fillMmds(resources, args.metadataFile, await readFile(args.metadataFile, "utf8"));
  if (Object.keys(args.logger).length > 0 || config?.logger !== undefined) {
    resources.setLogger({ ...args.logger, ...config?.logger });
  }
  if (args.metricsPath !== undefined && config?.metrics === undefined) {
    resources.setMetrics({ metrics_path: args.metricsPath, emit_id: false });
  }
  return resources;
}

async function openAtStart(path: string | undefined, problem: string): Promise<void> {
  if (path === undefined) return;
  try {
    await nodeHostFiles.check(path, "create");
  } catch (error) {
    if (error instanceof HostFileError) throw new Error(`${problem} ${error.ioMessage}`, { cause: error });
    throw error;
  }
}

/**
 * Firecracker's ProcessTimeReporter (vmm/src/logger/metrics.rs), once the API server listens: the wall
 * time since the launcher's CLOCK_MONOTONIC stamp, and the process's CPU time since its stamp plus the
 * launcher's own CPU time.
 */
function recordStartupTimes(metrics: MetricsRecorder, times: ProcessStartTimes): void {
  if (times.startTimeUs !== undefined) {
    const nowUs = Number(process.hrtime.bigint() / 1000n);
    metrics.record("api_server", "process_startup_time_us", nowUs - times.startTimeUs);
  }
  if (times.startTimeCpuUs !== undefined) {
    const { user, system } = process.cpuUsage();
    metrics.record("api_server", "process_startup_time_cpu_us", user + system - times.startTimeCpuUs + (times.parentCpuTimeUs ?? 0));
  }
}

/** --metadata: the file's JSON becomes the MMDS data store (Firecracker's main.rs MMDS_CONTENT_ARG). */
function fillMmds(resources: VmResources, path: string, text: string): void {
  let data: unknown;
  try {
    data = parseJsonText(text);
  } catch (error) {
    throw new Error(`--metadata ${path}: not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  try {
    resources.mmds().put(data);
  } catch (error) {
    throw new Error(`--metadata ${path}: ${(error as Error).message}`, { cause: error });
  }
}

/** package.json's version: this file runs from dist/src/cli/, three levels below the package root. */
async function petasanVersion(): Promise<string> {
  const manifest = JSON.parse(await readFile(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string };
  return manifest.version;
}

/**
 * Compiles, on a sample, the main thread's code a PUT /snapshot/load runs first (routing and checking the body,
 * checking the state file), while the process waits for its client: a restore into this process then does not
 * wait for V8 to compile it (bench/snapshot.ts). Nothing is loaded or changed.
 */
function warmUpLoadPath(): void {
  try {
    parseRequest("PUT", "/snapshot/load", JSON.stringify({ snapshot_path: "/sample.snap", mem_backend: { backend_type: "File", backend_path: "/sample.mem" }, resume_vm: true }));
  } catch {
    // Only a warm-up.
  }
  warmUpSnapshotLoading();
}
