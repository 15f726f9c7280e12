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
import { VirtualMachine, type CreateVmOptions, type SnapshotSource } from "./virtual-machine.js";
import { readSnapshot, resolveLoadHugePages, withOverrides } from "../vmm/restore.js";
import { resolveVmConfig, VmConfigError, type FirecrackerVmConfig } from "./config-input.js";
import { loadConfigFile } from "../config/index.js";

/**
 * A VM from a config (checked now: a bad config throws VmConfigError naming the field); start() builds
 * and boots it.
 */
export function createVm(config: FirecrackerVmConfig | string, options?: CreateVmOptions): VirtualMachine {
  return new VirtualMachine(resolveVmConfig(config), options);
}

/**
 * A VM restored from a snapshot (Firecracker's PUT /snapshot/load): the state file is read and checked now (a bad
 * one throws SnapshotFileError saying what is wrong); start() maps the memory file and resumes the guest where it
 * was, or leaves it Paused with `resume: false`. The drives and taps it names must be as they were (README).
 */
export function loadSnapshot(source: SnapshotSource, options?: CreateVmOptions): VirtualMachine {
  // Options a restored VM cannot honour are refused by name rather than ignored: its RAM is the memory file mapped
  // as saved (no host placement). Devices written by the user are code, not in the snapshot: `devices` must list the
  // same ones as when it was taken (their saved states go back through their restoreState).
  if (options?.host !== undefined) throw new VmConfigError("host", "loadSnapshot: the host option (ksm, numaNode) is not supported for a restored VM");
  const snapshot = readSnapshot(source.snapshotPath);
  let hugePages;
  try {
    hugePages = resolveLoadHugePages(snapshot.config["machine-config"].huge_pages, source.hugePages);
  } catch (e) {
    throw new VmConfigError("hugePages", `loadSnapshot: ${(e as Error).message}`);
  }
  // The snapshot's logger and metrics are the settings of the process that took it (its log and metrics files):
  // a restored VM uses the caller's, as Firecracker's takes them from the new process.
  const { logger: _takerLogger, metrics: _takerMetrics, ...saved } = withOverrides(snapshot.config, { network: source.networkOverrides, vsockUdsPath: source.vsockUdsPath });
  const config = {
    ...saved, "machine-config": { ...saved["machine-config"], track_dirty_pages: source.trackDirtyPages ?? false, huge_pages: hugePages },
    ...(source.logger && { logger: source.logger }), ...(source.metrics && { metrics: source.metrics }),
  };
  // start() restores from what was read here: the file is read and checked once, and the VM is the config it shows.
  return new VirtualMachine(config, options, { ...source, snapshot });
}

/** Reads and checks a Firecracker config file (as `petasan --config-file` does); pass the result to createVm. */
export async function loadVmConfigFile(path: string): Promise<FirecrackerVmConfig> {
  return loadConfigFile(path);
}

export { VirtualMachine, VmStateError } from "./virtual-machine.js";
export type { BalloonStatistics, CreateVmOptions, HostPlacement, SnapshotSource, SnapshotTarget, VmEvents, VmExit, VmExitReason, VmState, LogLevel } from "./virtual-machine.js";
export { SnapshotFileError } from "../vmm/snapshot/file-format.js";
/**
 * Starts a VM's threads ahead of need (`{ devices: 1, vcpu: 1 }`: a device thread and one vCPU thread), so that
 * the next start() of a VM in this process, a restore above all, does not wait for Node to start workers.
 */
export { discardWarmWorkers, prestartWorkers } from "../vmm/warm-workers.js";
/**
 * Runs the code that reads and checks a snapshot's state file once, on a built-in sample, so that the next
 * loadSnapshot() in this process does not wait for V8 to compile it (the API mode calls it while it waits for a load).
 */
export { warmUpSnapshotLoading } from "../vmm/snapshot/warm-up.js";
/**
 * Applies a Diff snapshot's memory file onto the memory file it was taken on top of (a Full one, or one already
 * merged), as Firecracker's snapshot-editor rebase; returns the bytes copied. Load the Diff's state file with the result.
 */
export { mergeMemoryLayer as mergeSnapshotMemory } from "../vmm/snapshot/merge-memory.js";
export { VmConfigError } from "./config-input.js";
export { ConfigFileError } from "../config/index.js";
export { MetricsRecorder, MetricsError, METRICS_PERIOD_MS, type MetricsSource } from "../vmm/metrics.js";
export { LogTargetError } from "../vmm/log-target.js";
export { LOG_LEVELS } from "../vmm/logger.js";
export { UserDeviceConfigError, type UserDevice, type UserBusDevice, type UserVirtioDevice } from "./user-devices.js";
export { UserDeviceError } from "../vmm/device-thread/user-devices.js";
export type {
  UserDeviceFactory, UserDeviceContext, GuestMemoryAccess, UserVirtioDeviceFactory, UserVirtioDeviceContext,
} from "../vmm/device-thread/user-devices.js";
export type { BusDevice } from "../devices/bus.js";
export type { InterruptLine } from "../devices/interrupt.js";
// Writing a virtio device: the contract with petasan's transport, its queues and descriptor chains, and helpers.
export type { VirtioDevice, ActivateContext } from "../devices/virtio/device.js";
export {
  COMMON_FEATURES, DEFAULT_QUEUE_SIZE, VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1, readConfigBytes, serveQueue,
} from "../devices/virtio/device.js";
export type { Queue } from "../devices/virtio/queue/queue.js";
export type { DescriptorChain, Descriptor } from "../devices/virtio/queue/descriptor-chain.js";
export type { GuestMemory } from "../memory/guest-memory.js";
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
  RateLimiterUpdate,
  VmConfig,
  VsockConfig,
} from "../config/index.js";
