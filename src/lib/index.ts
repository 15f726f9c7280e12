/**
 * petasan as a library: a KVM virtual machine monitor you drive from TypeScript.
 *
 * ```ts
 * import { createVm } from "petasan";
 * const vm = createVm({ "boot-source": { kernel_image_path: "vmlinux" }, "machine-config": { vcpu_count: 1, mem_size_mib: 128 } });
 * vm.console.pipe(process.stdout);
 * await vm.start();
 * const exit = await vm.exited; // { reason: "guest-reset", exitCode: 0, message: "..." }
 * ```
 *
 * The config is Firecracker's config-file JSON (what `firecracker --config-file` reads), as an object or as
 * text; loadVmConfigFile reads one from a file. Each VM owns its threads and file descriptors, so one
 * process can run several. This module is the package's public entry: the CLI and the Firecracker API
 * server are built on it, and nothing outside it is a stable interface.
 */
import { VirtualMachine, type CreateVmOptions } from "./virtual-machine.js";
import { resolveVmConfig, type FirecrackerVmConfig } from "./config-input.js";
import { loadConfigFile } from "../config/index.js";

/**
 * A VM from a config (checked now: a bad config throws VmConfigError naming the field); start() builds
 * and boots it.
 */
export function createVm(config: FirecrackerVmConfig | string, options?: CreateVmOptions): VirtualMachine {
  return new VirtualMachine(resolveVmConfig(config), options);
}

/** Reads and checks a Firecracker config file (as `petasan --config-file` does); pass the result to createVm. */
export async function loadVmConfigFile(path: string): Promise<FirecrackerVmConfig> {
  return loadConfigFile(path);
}

export { VirtualMachine, VmStateError } from "./virtual-machine.js";
export type { BalloonStatistics, CreateVmOptions, HostPlacement, VmEvents, VmExit, VmExitReason, VmState, LogLevel } from "./virtual-machine.js";
export { VmConfigError } from "./config-input.js";
export { ConfigFileError } from "../config/index.js";
export { MetricsRecorder, MetricsError, METRICS_PERIOD_MS, type MetricsSource } from "../vmm/metrics.js";
export { LogTargetError } from "../vmm/log-target.js";
export { LOG_LEVELS } from "../vmm/logger.js";
export type { FirecrackerVmConfig } from "./config-input.js";
export type { SerialConsole } from "./serial-console.js";
export type * from "./metrics.js";
export type {
  BootSourceConfig,
  DriveConfig,
  EntropyConfig,
  LoggerConfig,
  MachineConfig,
  MetricsConfig,
  NetworkInterfaceConfig,
  RateLimiterConfig,
  VmConfig,
} from "../config/index.js";
