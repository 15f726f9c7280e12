/**
 * The Controller turns Actions into effects: it keeps the phase, edits the VmResources before
 * boot, and drives the VMM through the injected VmmBackend after. Queries answer at once; every
 * other action runs one at a time, in arrival order, so a slow backend call (boot, pause) never
 * interleaves with another change. `handle` never rejects: failures are ActionResults.
 */
import { ConfigError, FIRECRACKER_API_VERSION, MmdsStoreError, VmResources, type BootSourceConfig, type DriveConfig, type DriveUpdate, type MmdsStore, type NetworkInterfaceUpdate } from "../config/index.js";
import { MmdsContents, type Action, type ActionKind, type ActionResult, type ApiData, type Command, type InstanceInfo, type InstanceState, type Phase } from "./actions.js";
import { ActionError, badRequest, describeError, INTERNAL_SERVER_ERROR, MISSING_KERNEL, PAYLOAD_TOO_LARGE } from "./errors.js";
import { HostFileError, nodeHostFiles, type FileAccess, type HostFiles } from "./host-files.js";
import { phaseRefusal } from "./phase-rules.js";
import type { VmmBackend } from "./vmm-backend.js";
import type { SnapshotCreateParams, SnapshotLoadParams } from "./snapshot-bodies.js";

export interface ControllerOptions {
  backend: VmmBackend;
  /** Reported as InstanceInfo.vmm_version (GET /version reports the Firecracker API version). */
  vmmVersion: string;
  /** InstanceInfo.id; Firecracker's default when no --id is given. */
  instanceId?: string;
  /** Start from these resources (e.g. a --config-file) instead of an empty configuration. */
  resources?: VmResources;
  /** Opens the files a PUT names, to refuse missing ones at once (default: the real file system). */
  hostFiles?: HostFiles;
}

/** Firecracker's MetricsConfigError::InitializationFailure prefix, after VmmActionError's "Metrics error". */
const METRICS_ERROR = "Metrics error: Cannot initialize the metrics system due to bad user input:";

const INSTANCE_STATES: { readonly [P in Phase]: InstanceState } = {
  Configuring: "Not started",
  Running: "Running",
  Paused: "Paused",
  Stopped: "Stopped",
};

/** The prefix Firecracker puts before a configuration rule's message (VmmActionError variants). */
const CONFLICT_PREFIX: Partial<Record<ActionKind, string>> = {
  putMachineConfig: "Machine config error",
  patchMachineConfig: "Machine config error",
  putDrive: "Drive config error",
  patchDrive: "Drive config error",
  putNetworkInterface: "Network config error",
  patchNetworkInterface: "Network config error",
  putBalloon: "Balloon config error",
};

/** Configuration that makes the process a booted, not a restored, VM (Firecracker sets boot_path for these). */
const BOOT_RESOURCE_ACTIONS: ReadonlySet<ActionKind> = new Set<ActionKind>([
  "putBootSource", "putMachineConfig", "patchMachineConfig", "putDrive", "putNetworkInterface", "putEntropy", "putVsock",
  "putBalloon", "putMmdsConfig",
]);
/** Firecracker's BalloonConfigError::DeviceNotFound text. */
const NO_BALLOON = "No balloon device found.";

export class Controller {
  private currentPhase: Phase = "Configuring";
  private readonly backend: VmmBackend;
  private readonly resources: VmResources;
  private readonly vmmVersion: string;
  private readonly instanceId: string;
  private readonly hostFiles: HostFiles;
  /** A boot-specific resource was configured: a snapshot can no longer be loaded (Firecracker's boot_path). */
  private bootResourcesConfigured = false;
  /** The configuration of a VM restored from a snapshot (GET /vm/config shows it). */
  private restoredConfig?: ReturnType<VmResources["snapshot"]>;
  /** The tail of the queue of state-changing actions. */
  private queueTail: Promise<unknown> = Promise.resolve();

  constructor(options: ControllerOptions) {
    this.backend = options.backend;
    this.vmmVersion = options.vmmVersion;
    this.instanceId = options.instanceId ?? "anonymous-instance";
    this.resources = options.resources ?? new VmResources();
    this.hostFiles = options.hostFiles ?? nodeHostFiles;
  }

  get phase(): Phase {
    return this.currentPhase;
  }

  handle(action: Action): Promise<ActionResult> {
    switch (action.kind) {
      case "getInstanceInfo":
        return Promise.resolve({ ok: true, data: this.instanceInfo() });
      case "getVersion":
        // The Firecracker version whose API this is, as `--version` prints it (Firecracker's test_api_version
        // checks the two agree); petasan's own version is InstanceInfo.vmm_version.
        return Promise.resolve({ ok: true, data: { firecracker_version: FIRECRACKER_API_VERSION } });
      case "getMachineConfig":
        return Promise.resolve({ ok: true, data: this.resources.getMachineConfig() });
      case "getVmConfig":
        return Promise.resolve({ ok: true, data: this.restoredConfig ?? this.resources.snapshot() });
      case "getMmds":
        return Promise.resolve(this.getMmds());
      default: {
        const result = this.queueTail.then(() => this.run(action));
        this.queueTail = result;
        return result;
      }
    }
  }

  /** The VMM reports that the guest has ended (shutdown, reset or a fatal error). */
  vmStopped(): void {
    this.currentPhase = "Stopped";
  }

  private instanceInfo(): InstanceInfo {
    return { app_name: "petasan", id: this.instanceId, state: INSTANCE_STATES[this.currentPhase], vmm_version: this.vmmVersion };
  }

  private async run(action: Command): Promise<ActionResult> {
    const refusal = phaseRefusal(this.currentPhase, action.kind);
    if (refusal !== undefined) return { ok: false, error: badRequest(refusal) };
    try {
      const data = await this.perform(action);
      if (BOOT_RESOURCE_ACTIONS.has(action.kind)) this.bootResourcesConfigured = true;
      return data === undefined ? { ok: true } : { ok: true, data };
    } catch (error) {
      return { ok: false, error: this.toActionError(action.kind, error) };
    }
  }

  private async perform(action: Command): Promise<ApiData | void> {
    switch (action.kind) {
      case "putBootSource":
        await this.openBootSource(action.bootSource);
        return this.resources.setBootSource(action.bootSource);
      case "putMachineConfig":
        return this.resources.setMachineConfig(action.machineConfig);
      case "patchMachineConfig":
        return this.resources.updateMachineConfig(action.update);
      case "putDrive":
        // As Firecracker's BlockBuilder::insert: the one-root-device rule, then the file.
        this.resources.checkDriveInsert(action.drive);
        await this.openDrive(action.drive);
        return this.resources.insertDrive(action.drive);
      case "putNetworkInterface":
        return this.resources.insertNetworkInterface(action.networkInterface);
      case "patchNetworkInterface":
        return this.patchNetworkInterface(action.update);
      case "putEntropy":
        return this.resources.setEntropy(action.entropy);
      case "putVsock":
        return this.resources.setVsock(action.vsock);
      case "putMmdsConfig":
        return this.resources.setMmdsConfig(action.config);
      case "putMmds":
        return this.changeMmds((store) => store.put(action.data));
      case "patchMmds":
        return this.changeMmds((store) => store.patch(action.data));
      case "putLogger":
        if (action.logger.log_path !== undefined) {
          await this.opens(action.logger.log_path, "create", (io) => `Logger error: Failed to open target file: ${io}`);
        }
        return this.resources.setLogger(action.logger);
      case "putMetrics":
        // Firecracker's METRICS can be initialized once (by --metrics-path or one PUT).
        if (this.resources.snapshot().metrics !== undefined) throw badRequest(`${METRICS_ERROR} Reinitialization of metrics not allowed.`);
        await this.opens(action.metrics.metrics_path, "create", (io) => `${METRICS_ERROR} ${io}`);
        return this.resources.setMetrics(action.metrics);
      case "patchDrive":
        return this.patchDrive(action.update);
      case "instanceStart":
        return this.start();
      case "sendCtrlAltDel":
        return this.callVmm(() => this.backend.sendCtrlAltDel());
      case "flushMetrics":
        return this.callVmm(() => this.backend.flushMetrics());
      case "setVmState":
        return action.state === "Paused" ? this.pause() : this.resume();
      case "createSnapshot":
        return this.createSnapshot(action.params);
      case "loadSnapshot":
        return this.loadSnapshot(action.params);
      case "putBalloon":
        return this.resources.setBalloon(action.balloon);
      case "getBalloon":
        return this.getBalloon();
      case "patchBalloon":
        await this.balloonCall(() => this.backend.updateBalloon(action.update.amount_mib));
        return this.resources.updateBalloon(action.update);
      case "patchBalloonStats":
        await this.balloonCall(() => this.backend.updateBalloonStatsInterval(action.update.stats_polling_interval_s));
        return this.resources.updateBalloon(action.update);
      case "getBalloonStats":
        return this.balloonCall(() => this.backend.balloonStatistics());
    }
  }

  /** GET /balloon: the config as set before boot and changed by PATCHes since (Firecracker: DeviceNotFound without one). */
  private getBalloon(): ApiData {
    const balloon = this.resources.getBalloon();
    if (balloon === undefined) throw badRequest(`Balloon config error: ${NO_BALLOON}`);
    return balloon;
  }

  /** A balloon request to the running VM; its errors are Firecracker's BalloonError texts after "Balloon update error". */
  private async balloonCall<T>(call: () => Promise<T>): Promise<T> {
    if (this.resources.getBalloon() === undefined) throw badRequest(`Balloon update error: ${NO_BALLOON}`);
    try {
      return await call();
    } catch (error) {
      throw badRequest(`Balloon update error: ${describeError(error)}`, error);
    }
  }

  /** Firecracker's BootSourceConfigError texts (vmm_config/boot_source.rs). */
  private async openBootSource(bootSource: BootSourceConfig): Promise<void> {
    await this.opens(bootSource.kernel_image_path, "read", (io) => `Boot source error: The kernel file cannot be opened: ${io}`);
    if (bootSource.initrd_path !== undefined) {
      await this.opens(
        bootSource.initrd_path,
        "read",
        (io) => `Boot source error: The initrd file cannot be opened due to invalid path or invalid permissions. ${io}`,
      );
    }
  }

  /** Read-only or read-write as the drive will be used; Firecracker's DriveError/VirtioBlockError texts. */
  private async openDrive(drive: DriveConfig): Promise<void> {
    await this.opens(
      drive.path_on_host,
      drive.is_read_only ? "read" : "readWrite",
      (io) => `Drive config error: Unable to create the virtio block device: Virtio backend error: Error manipulating the backing file: ${io} ${drive.path_on_host}`,
    );
  }

  private async opens(path: string, access: FileAccess, fault: (ioMessage: string) => string): Promise<void> {
    try {
      await this.hostFiles.check(path, access);
    } catch (error) {
      if (error instanceof HostFileError) throw badRequest(fault(error.ioMessage), error);
      throw error;
    }
  }

  private async createSnapshot(params: SnapshotCreateParams): Promise<void> {
    if (this.currentPhase !== "Paused") throw badRequest("Create snapshot error: the microVM must be paused first (PATCH /vm with state Paused).");
    try {
      await this.backend.createSnapshot(params);
    } catch (error) {
      throw badRequest(`Create snapshot error: ${describeError(error)}`, error);
    }
  }

  /** Firecracker's rule: only in a fresh process, before any boot-specific resource is configured. */
  private async loadSnapshot(params: SnapshotLoadParams): Promise<void> {
    if (this.bootResourcesConfigured) throw badRequest("Loading a microVM snapshot not allowed after configuring boot-specific resources.");
    let config;
    try {
      // A snapshot holds no MMDS data store (as Firecracker's): the one made before the load (--metadata, PUT /mmds)
      // is what the restored guest reads.
      // The logger and metrics are this process's (PUT /logger, /metrics, --log-path, --metrics-path), as in
      // Firecracker: the snapshot's are those of the process that took it.
      const mmdsData = this.resources.existingMmds()?.text;
      const { logger, metrics } = this.resources.snapshot();
      const extras = { ...(mmdsData !== undefined && { mmdsData }), ...(logger && { logger }), ...(metrics && { metrics }) };
      config = await this.backend.loadSnapshot(params, Object.keys(extras).length > 0 ? extras : undefined);
    } catch (error) {
      throw badRequest(`Load snapshot error: Failed to restore from snapshot: ${describeError(error)}`, error);
    }
    this.restoredConfig = config;
    this.resources.adoptRestored(config);
    if (this.currentPhase === "Configuring") this.currentPhase = params.resume_vm ? "Running" : "Paused";
  }

  private async start(): Promise<void> {
    const config = this.resources.bootableConfig();
    if (config === undefined) throw badRequest(MISSING_KERNEL);
    try {
      const mmdsData = this.resources.existingMmds()?.text;
      await this.backend.start(config, mmdsData === undefined ? undefined : { mmdsData });
    } catch (error) {
      throw badRequest(`Start microvm error: ${describeError(error)}`, error);
    }
    // The guest may already have ended while start() was resolving.
    if (this.currentPhase === "Configuring") this.currentPhase = "Running";
  }

  /** GET /mmds: the store with serde_json's key order; an empty store reads as {} (parsed_request.rs). */
  private getMmds(): ActionResult {
    let store: MmdsStore;
    try {
      store = this.mmdsStore();
    } catch (error) {
      return { ok: false, error: this.toActionError("getMmds", error) };
    }
    return { ok: true, data: new MmdsContents(JSON.parse(store.text)) };
  }

  /** Before boot, MMDS is created on first use; after it, only if it was created before (Firecracker's Vmm::get_mmds). */
  private mmdsStore(): MmdsStore {
    if (this.currentPhase === "Configuring") return this.resources.mmds();
    const store = this.resources.existingMmds();
    if (store === undefined) throw new MmdsStoreError("not-initialized");
    return store;
  }

  /** PUT/PATCH /mmds: the store changes (or refuses) here; a running guest then gets the new contents. */
  private async changeMmds(change: (store: MmdsStore) => void): Promise<void> {
    const store = this.mmdsStore();
    change(store);
    if (this.currentPhase !== "Configuring") await this.callVmm(() => this.backend.updateMmds(store.text));
  }

  private async pause(): Promise<void> {
    if (this.currentPhase === "Paused") return;
    await this.callVmm(() => this.backend.pause());
    if (this.currentPhase === "Running") this.currentPhase = "Paused";
  }

  private async resume(): Promise<void> {
    if (this.currentPhase === "Running") return;
    await this.callVmm(() => this.backend.resume());
    if (this.currentPhase === "Paused") this.currentPhase = "Running";
  }

  /** Swaps the backing file in the VMM first, then records it, so a failed swap changes nothing. */
  private async patchDrive(update: DriveUpdate): Promise<void> {
    const unable = "Drive config error: Unable to patch the block device:";
    const advice = "Please verify the request arguments.";
    if (!this.resources.hasDrive(update.drive_id)) throw badRequest(`${unable} no drive "${update.drive_id}" is configured. ${advice}`);
    if (update.path_on_host === undefined && update.rate_limiter === undefined) {
      throw badRequest(`${unable} give path_on_host and/or rate_limiter. ${advice}`);
    }
    try {
      if (update.path_on_host !== undefined) await this.backend.updateDrivePath(update.drive_id, update.path_on_host);
      if (update.rate_limiter !== undefined) await this.backend.updateRateLimiters({ device: "drive", id: update.drive_id, rateLimiter: update.rate_limiter });
    } catch (error) {
      throw badRequest(`${unable} ${describeError(error)}. ${advice}`, error);
    }
    this.resources.updateDrive(update);
  }

  /** Applies the new rate limiters in the VMM first, then records them, so a failed update changes nothing. */
  private async patchNetworkInterface(update: NetworkInterfaceUpdate): Promise<void> {
    const known = this.resources.snapshot()["network-interfaces"].some((i) => i.iface_id === update.iface_id);
    // An unknown interface gets updateNetworkInterface's own error below.
    if (known && (update.rx_rate_limiter !== undefined || update.tx_rate_limiter !== undefined)) {
      try {
        await this.backend.updateRateLimiters({ device: "network-interface", id: update.iface_id, rx: update.rx_rate_limiter, tx: update.tx_rate_limiter });
      } catch (error) {
        throw badRequest(`Network config error: Unable to patch the network interface: ${describeError(error)}. Please verify the request arguments.`, error);
      }
    }
    this.resources.updateNetworkInterface(update);
  }

  private async callVmm(call: () => Promise<void>): Promise<void> {
    try {
      await call();
    } catch (error) {
      throw badRequest(`Internal VMM error: ${describeError(error)}`, error);
    }
  }

  private toActionError(kind: ActionKind, error: unknown): ActionError {
    if (error instanceof ActionError) return error;
    if (error instanceof MmdsStoreError) {
      // rpc_interface.rs: VmmActionError::MmdsLimitExceeded (413) and VmmActionError::Mmds (400).
      return error.kind === "limit"
        ? new ActionError(PAYLOAD_TOO_LARGE, `MMDS limit exceeded error: ${error.message}`, { cause: error })
        : badRequest(`MMDS error: ${error.message}`, error);
    }
    if (error instanceof ConfigError) {
      const prefix = CONFLICT_PREFIX[kind];
      // Firecracker's texts for broken rules name no field ("Machine config error: The number of vCPUs ...").
      const text = error.code === "conflict" ? error.problem : error.message;
      return badRequest(prefix === undefined ? text : `${prefix}: ${text}`, error);
    }
    return new ActionError(INTERNAL_SERVER_ERROR, `Internal server error: ${describeError(error)}`, { cause: error });
  }
}
