/**
 * VmResources: the configuration being assembled before boot, with the rules that span several
 * items (one root drive, unique MACs, machine-config field pairs). The API and --config-file both
 * build through it, so both give the same errors.
 */
import { BALLOON_TOO_LARGE, type BalloonConfig } from "./balloon.js";
import type { BootSourceConfig } from "./boot-source.js";
import type { DriveConfig, DriveUpdate } from "./drive.js";
import type { EntropyConfig } from "./entropy.js";
import type { VsockConfig } from "./vsock.js";
import type { LoggerConfig } from "./logger.js";
import {
  applyMachineConfigUpdate,
  DEFAULT_MACHINE_CONFIG,
  type MachineConfig,
  type MachineConfigUpdate,
} from "./machine-config.js";
import type { MetricsConfig } from "./metrics.js";
import type { NetworkInterfaceConfig, NetworkInterfaceUpdate } from "./network-interface.js";
import { ConfigError } from "./schema.js";
import { DEFAULT_MMDS_IPV4_ADDRESS, MMDS_CONFIG_ERROR_PREFIX, mmdsConfigProblem, MmdsStore, type MmdsConfig } from "./mmds.js";
import { vmConfigSchema, type FullVmConfiguration, type VmConfig } from "./vm-config.js";

export class VmResources {
  private bootSource: BootSourceConfig | undefined;
  private machineConfig: MachineConfig = { ...DEFAULT_MACHINE_CONFIG };
  /** The root drive, if any, is kept first (Firecracker BlockBuilder does the same). */
  private drives: DriveConfig[] = [];
  private networkInterfaces: NetworkInterfaceConfig[] = [];
  private entropy: EntropyConfig | undefined;
  private vsock: VsockConfig | undefined;
  private balloon: BalloonConfig | undefined;
  private logger: LoggerConfig | undefined;
  private metrics: MetricsConfig | undefined;
  private mmdsConfig: MmdsConfig | undefined;
  /** Created by the first use of MMDS (a PUT, PATCH or GET of /mmds, its config, or --metadata), as Firecracker's mmds_or_default. */
  private mmdsStore: MmdsStore | undefined;

  /** `mmdsSizeLimit`: the data store's limit in bytes (--mmds-size-limit). */
  constructor(private readonly options: { mmdsSizeLimit?: number } = {}) {}

  /** Builds resources from a schema-checked VmConfig, naming the item of any rule it breaks. */
  static fromConfig(config: VmConfig, options: { mmdsSizeLimit?: number } = {}): VmResources {
    const resources = new VmResources(options);
    resources.setBootSource(config["boot-source"]);
    withPrefix("machine-config", () => resources.setMachineConfig(config["machine-config"]));
    config.drives.forEach((drive, index) => {
      rejectDuplicateId("drives", config.drives, index, "drive_id", (d) => d.drive_id);
      withPrefix(`drives[${index}]`, () => resources.insertDrive(drive));
    });
    config["network-interfaces"].forEach((iface, index) => {
      rejectDuplicateId("network-interfaces", config["network-interfaces"], index, "iface_id", (i) => i.iface_id);
      withPrefix(`network-interfaces[${index}]`, () => resources.insertNetworkInterface(iface));
    });
    if (config.entropy) resources.setEntropy(config.entropy);
    if (config.vsock) resources.setVsock(config.vsock);
    const mmds = config["mmds-config"];
    if (mmds) withPrefix("mmds-config", () => resources.setMmdsConfig(mmds));
    if (config.balloon) withPrefix("balloon", () => resources.setBalloon(config.balloon!));
    if (config.logger) resources.setLogger(config.logger);
    if (config.metrics) resources.setMetrics(config.metrics);
    return resources;
  }

  /**
   * After PUT /snapshot/load: the restored VM's devices become this process's, so PATCH /drives, PATCH
   * /network-interfaces and /mmds after the load find them (Firecracker restores its VmResources from the
   * snapshot too). The logger and metrics stay this process's own; an MMDS data store already made is kept.
   */
  adoptRestored(config: VmConfig): void {
    this.setBootSource(config["boot-source"]);
    this.setMachineConfig(config["machine-config"]);
    this.drives = config.drives.map((d) => structuredClone(d));
    this.networkInterfaces = config["network-interfaces"].map((i) => structuredClone(i));
    this.entropy = config.entropy && structuredClone(config.entropy);
    this.vsock = config.vsock && structuredClone(config.vsock);
    this.balloon = config.balloon && structuredClone(config.balloon);
    const mmds = config["mmds-config"];
    if (mmds) this.setMmdsConfig(mmds);
  }

  setBootSource(bootSource: BootSourceConfig): void {
    this.bootSource = structuredClone(bootSource);
  }

  /** PUT /machine-config: every field but an absent cpu_template, which stays (see machine-config.ts). */
  setMachineConfig(config: MachineConfig): void {
    this.machineConfig = applyMachineConfigUpdate(this.machineConfig, structuredClone(config));
  }

  updateMachineConfig(update: MachineConfigUpdate): void {
    this.machineConfig = applyMachineConfigUpdate(this.machineConfig, update);
  }

  /** Throws the ConfigError insertDrive would, without inserting (Firecracker checks this before opening the file). */
  checkDriveInsert(drive: DriveConfig): void {
    const root = this.drives.find((d) => d.is_root_device);
    if (drive.is_root_device && root !== undefined && root.drive_id !== drive.drive_id) {
      // Firecracker's DriveError::RootBlockDeviceAlreadyAdded text.
      throw new ConfigError("is_root_device", `A root block device already exists! (drive "${root.drive_id}")`, "conflict");
    }
  }

  /** Adds a drive, or replaces the one with the same drive_id. */
  insertDrive(drive: DriveConfig): void {
    this.checkDriveInsert(drive);
    const others = this.drives.filter((d) => d.drive_id !== drive.drive_id);
    const copy = structuredClone(drive);
    const index = this.drives.findIndex((d) => d.drive_id === drive.drive_id);
    if (drive.is_root_device) this.drives = [copy, ...others];
    else if (index >= 0 && !this.drives[index].is_root_device) this.drives[index] = copy;
    else this.drives = [...others, copy];
  }

  hasDrive(driveId: string): boolean {
    return this.drives.some((d) => d.drive_id === driveId);
  }

  /** Applies a PATCH to an existing drive and returns the drive as it now is. */
  updateDrive(update: DriveUpdate): DriveConfig {
    const drive = this.drives.find((d) => d.drive_id === update.drive_id);
    if (drive === undefined) throw new ConfigError("drive_id", `no drive "${update.drive_id}" is configured`, "conflict");
    if (update.path_on_host !== undefined) drive.path_on_host = update.path_on_host;
    if (update.rate_limiter !== undefined) drive.rate_limiter = structuredClone(update.rate_limiter);
    return structuredClone(drive);
  }

  /** Adds a network interface, or replaces the one with the same iface_id. */
  insertNetworkInterface(iface: NetworkInterfaceConfig): void {
    const others = this.networkInterfaces.filter((i) => i.iface_id !== iface.iface_id);
    const sameMac = iface.guest_mac === undefined ? undefined : others.find((i) => i.guest_mac === iface.guest_mac);
    if (sameMac !== undefined) {
      // Firecracker's NetworkInterfaceError::GuestMacAddressInUse text.
      throw new ConfigError("guest_mac", `The MAC address is already in use: ${iface.guest_mac} (network interface "${sameMac.iface_id}")`, "conflict");
    }
    const sameTap = others.find((i) => i.host_dev_name === iface.host_dev_name);
    if (sameTap !== undefined) {
      throw new ConfigError("host_dev_name", `${iface.host_dev_name} is already used by network interface "${sameTap.iface_id}"`, "conflict");
    }
    const copy = structuredClone(iface);
    const index = this.networkInterfaces.findIndex((i) => i.iface_id === iface.iface_id);
    if (index >= 0) this.networkInterfaces[index] = copy;
    else this.networkInterfaces.push(copy);
  }

  /** Applies a PATCH (rate limiters) to an existing network interface. */
  updateNetworkInterface(update: NetworkInterfaceUpdate): void {
    const iface = this.networkInterfaces.find((i) => i.iface_id === update.iface_id);
    if (iface === undefined) throw new ConfigError("iface_id", `no network interface "${update.iface_id}" is configured`, "conflict");
    if (update.rx_rate_limiter !== undefined) iface.rx_rate_limiter = structuredClone(update.rx_rate_limiter);
    if (update.tx_rate_limiter !== undefined) iface.tx_rate_limiter = structuredClone(update.tx_rate_limiter);
  }

  setEntropy(entropy: EntropyConfig): void {
    this.entropy = structuredClone(entropy);
  }

  /** PUT /vsock: one vsock device per VM, replaced by a later PUT before boot (as Firecracker). */
  setVsock(vsock: VsockConfig): void {
    this.vsock = structuredClone(vsock);
  }

  /** PUT /mmds/config: checked against the interfaces configured so far (Firecracker's rules and messages). */
  setMmdsConfig(config: MmdsConfig): void {
    const problem = mmdsConfigProblem(config, this.networkInterfaces.map((i) => i.iface_id));
    if (problem !== undefined) throw new ConfigError("", `${MMDS_CONFIG_ERROR_PREFIX}: ${problem}`, "conflict");
    this.mmdsConfig = { ...structuredClone(config), ipv4_address: config.ipv4_address ?? DEFAULT_MMDS_IPV4_ADDRESS };
    this.mmds();
  }

  /** The MMDS data store, created on first use. */
  mmds(): MmdsStore {
    this.mmdsStore ??= new MmdsStore(this.options.mmdsSizeLimit);
    return this.mmdsStore;
  }

  /** The data store if anything has used MMDS yet (after boot, Firecracker refuses MMDS requests when none was created). */
  existingMmds(): MmdsStore | undefined {
    return this.mmdsStore;
  }

  /** PUT /balloon before boot (Firecracker VmResources::set_balloon_device): the target cannot exceed guest RAM. */
  setBalloon(balloon: BalloonConfig): void {
    if (balloon.amount_mib > this.machineConfig.mem_size_mib) throw new ConfigError("amount_mib", BALLOON_TOO_LARGE, "conflict");
    this.balloon = structuredClone(balloon);
  }

  /** Records a PATCH the running balloon took (target or polling interval), for GET /balloon and /vm/config. */
  updateBalloon(update: Partial<Pick<BalloonConfig, "amount_mib" | "stats_polling_interval_s">>): void {
    if (this.balloon) this.balloon = { ...this.balloon, ...update };
  }

  /** GET /balloon: the configured device, or undefined. */
  getBalloon(): BalloonConfig | undefined {
    return this.balloon && structuredClone(this.balloon);
  }

  /**
   * PUT /logger as Firecracker's Logger::update: log_path, show_level, show_log_origin and module are
   * changed only when given; level is always set, to the default (Info) when absent.
   */
  setLogger(logger: LoggerConfig): void {
    const merged: LoggerConfig = { ...this.logger, ...structuredClone(logger) };
    if (logger.level === undefined) delete merged.level;
    this.logger = merged;
  }

  setMetrics(metrics: MetricsConfig): void {
    this.metrics = structuredClone(metrics);
  }

  getMachineConfig(): MachineConfig {
    return structuredClone(this.machineConfig);
  }

  /** A copy of everything configured so far (GET /vm/config). */
  snapshot(): FullVmConfiguration {
    const config: FullVmConfiguration = {
      ...(this.bootSource && { "boot-source": this.bootSource }),
      "machine-config": this.machineConfig,
      drives: this.drives,
      "network-interfaces": this.networkInterfaces,
    };
    if (this.entropy) config.entropy = this.entropy;
    if (this.vsock) config.vsock = this.vsock;
    if (this.mmdsConfig) config["mmds-config"] = this.mmdsConfig;
    if (this.balloon) config.balloon = this.balloon;
    if (this.logger) config.logger = this.logger;
    if (this.metrics) config.metrics = this.metrics;
    return structuredClone(config);
  }

  /** The config to boot from, or undefined while no boot source is set. */
  bootableConfig(): VmConfig | undefined {
    const { "boot-source": bootSource, ...rest } = this.snapshot();
    return bootSource === undefined ? undefined : { "boot-source": bootSource, ...rest };
  }
}

/** Checks a parsed JSON value as a complete config: its shape, then the cross-item rules. */
export function parseVmConfig(value: unknown): VmConfig {
  const config = vmConfigSchema.parse(value);
  return { ...VmResources.fromConfig(config).snapshot(), "boot-source": config["boot-source"] };
}

function withPrefix(prefix: string, apply: () => void): void {
  try {
    apply();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw new ConfigError(error.field === "" ? prefix : `${prefix}.${error.field}`, error.problem, error.code, error.serde);
  }
}

function rejectDuplicateId<T>(list: string, items: readonly T[], index: number, idField: string, idOf: (item: T) => string): void {
  const first = items.findIndex((item) => idOf(item) === idOf(items[index]));
  if (first < index) {
    throw new ConfigError(`${list}[${index}].${idField}`, `"${idOf(items[index])}" is already used by ${list}[${first}]`, "conflict");
  }
}
