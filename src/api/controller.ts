/**
 * The Controller turns Actions into effects: it keeps the phase, edits the VmResources before
 * boot, and drives the VMM through the injected VmmBackend after. Queries answer at once; every
 * other action runs one at a time, in arrival order, so a slow backend call (boot, pause) never
 * interleaves with another change. `handle` never rejects: failures are ActionResults.
 */
import { ConfigError, VmResources, type DriveUpdate } from "../config/index.js";
import type { Action, ActionKind, ActionResult, Command, InstanceInfo, InstanceState, Phase } from "./actions.js";
import { ActionError, badRequest, describeError, INTERNAL_SERVER_ERROR, MISSING_KERNEL } from "./errors.js";
import { phaseRefusal } from "./phase-rules.js";
import type { VmmBackend } from "./vmm-backend.js";
import type { SnapshotCreateParams, SnapshotLoadParams } from "./snapshot-bodies.js";

export interface ControllerOptions {
  backend: VmmBackend;
  /** Reported as InstanceInfo.vmm_version and by GET /version. */
  vmmVersion: string;
  /** InstanceInfo.id; Firecracker's default when no --id is given. */
  instanceId?: string;
  /** Start from these resources (e.g. a --config-file) instead of an empty configuration. */
  resources?: VmResources;
}

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
};

/** Configuration that makes the process a booted, not a restored, VM (Firecracker sets boot_path for these). */
const BOOT_RESOURCE_ACTIONS: ReadonlySet<ActionKind> = new Set<ActionKind>([
  "putBootSource", "putMachineConfig", "patchMachineConfig", "putDrive", "putNetworkInterface", "putEntropy",
]);

export class Controller {
  private currentPhase: Phase = "Configuring";
  private readonly backend: VmmBackend;
  private readonly resources: VmResources;
  private readonly vmmVersion: string;
  private readonly instanceId: string;
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
  }

  get phase(): Phase {
    return this.currentPhase;
  }

  handle(action: Action): Promise<ActionResult> {
    switch (action.kind) {
      case "getInstanceInfo":
        return Promise.resolve({ ok: true, data: this.instanceInfo() });
      case "getVersion":
        return Promise.resolve({ ok: true, data: { firecracker_version: this.vmmVersion } });
      case "getMachineConfig":
        return Promise.resolve({ ok: true, data: this.resources.getMachineConfig() });
      case "getVmConfig":
        return Promise.resolve({ ok: true, data: this.restoredConfig ?? this.resources.snapshot() });
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
      await this.perform(action);
      if (BOOT_RESOURCE_ACTIONS.has(action.kind)) this.bootResourcesConfigured = true;
      return { ok: true };
    } catch (error) {
      return { ok: false, error: this.toActionError(action.kind, error) };
    }
  }

  private async perform(action: Command): Promise<void> {
    switch (action.kind) {
      case "putBootSource":
        return this.resources.setBootSource(action.bootSource);
      case "putMachineConfig":
        return this.resources.setMachineConfig(action.machineConfig);
      case "patchMachineConfig":
        return this.resources.updateMachineConfig(action.update);
      case "putDrive":
        return this.resources.insertDrive(action.drive);
      case "putNetworkInterface":
        return this.resources.insertNetworkInterface(action.networkInterface);
      case "patchNetworkInterface":
        return this.resources.updateNetworkInterface(action.update);
      case "putEntropy":
        return this.resources.setEntropy(action.entropy);
      case "putLogger":
        return this.resources.setLogger(action.logger);
      case "putMetrics":
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
      config = await this.backend.loadSnapshot(params);
    } catch (error) {
      throw badRequest(`Load snapshot error: Failed to restore from snapshot: ${describeError(error)}`, error);
    }
    this.restoredConfig = config;
    if (this.currentPhase === "Configuring") this.currentPhase = params.resume_vm ? "Running" : "Paused";
  }

  private async start(): Promise<void> {
    const config = this.resources.bootableConfig();
    if (config === undefined) throw badRequest(MISSING_KERNEL);
    try {
      await this.backend.start(config);
    } catch (error) {
      throw badRequest(`Start microvm error: ${describeError(error)}`, error);
    }
    // The guest may already have ended while start() was resolving.
    if (this.currentPhase === "Configuring") this.currentPhase = "Running";
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
    if (update.path_on_host !== undefined) {
      try {
        await this.backend.updateDrivePath(update.drive_id, update.path_on_host);
      } catch (error) {
        throw badRequest(`${unable} ${describeError(error)}. ${advice}`, error);
      }
    }
    this.resources.updateDrive(update);
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
    if (error instanceof ConfigError) {
      const prefix = CONFLICT_PREFIX[kind];
      return badRequest(prefix === undefined ? error.message : `${prefix}: ${error.message}`, error);
    }
    return new ActionError(INTERNAL_SERVER_ERROR, `Internal server error: ${describeError(error)}`, { cause: error });
  }
}
