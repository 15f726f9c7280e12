/** What the API asks of the Controller, and what it gets back. */
import type {
  BalloonConfig,
  BalloonStatsData,
  BalloonStatsUpdate,
  BalloonUpdate,
  BootSourceConfig,
  DriveConfig,
  DriveUpdate,
  EntropyConfig,
  VsockConfig,
  FullVmConfiguration,
  LoggerConfig,
  MachineConfig,
  MachineConfigUpdate,
  MetricsConfig,
  NetworkInterfaceConfig,
  NetworkInterfaceUpdate,
  MmdsConfig,
} from "../config/index.js";
import type { ActionError } from "./errors.js";
import type { SnapshotCreateParams, SnapshotLoadParams } from "./snapshot-bodies.js";

/** Reads that never change state (answered in any phase, without waiting). */
export type Query = { kind: "getInstanceInfo" } | { kind: "getVersion" } | { kind: "getMachineConfig" } | { kind: "getVmConfig" } | { kind: "getMmds" };

/** Everything that changes the configuration or the VM (run one at a time). */
export type Command =
  | { kind: "putBootSource"; bootSource: BootSourceConfig }
  | { kind: "putMachineConfig"; machineConfig: MachineConfig }
  | { kind: "patchMachineConfig"; update: MachineConfigUpdate }
  | { kind: "putDrive"; drive: DriveConfig }
  | { kind: "patchDrive"; update: DriveUpdate }
  | { kind: "putNetworkInterface"; networkInterface: NetworkInterfaceConfig }
  | { kind: "patchNetworkInterface"; update: NetworkInterfaceUpdate }
  | { kind: "putEntropy"; entropy: EntropyConfig }
  | { kind: "putVsock"; vsock: VsockConfig }
  /** PUT /mmds and PATCH /mmds: `data` is any JSON value (the body). */
  | { kind: "putMmds"; data: unknown }
  | { kind: "patchMmds"; data: unknown }
  | { kind: "putMmdsConfig"; config: MmdsConfig }
  | { kind: "putLogger"; logger: LoggerConfig }
  | { kind: "putMetrics"; metrics: MetricsConfig }
  | { kind: "putBalloon"; balloon: BalloonConfig }
  | { kind: "getBalloon" }
  | { kind: "patchBalloon"; update: BalloonUpdate }
  | { kind: "getBalloonStats" }
  | { kind: "patchBalloonStats"; update: BalloonStatsUpdate }
  | { kind: "instanceStart" }
  | { kind: "sendCtrlAltDel" }
  | { kind: "flushMetrics" }
  | { kind: "setVmState"; state: "Paused" | "Resumed" }
  | { kind: "createSnapshot"; params: SnapshotCreateParams }
  | { kind: "loadSnapshot"; params: SnapshotLoadParams };

export type Action = Query | Command;

export type ActionKind = Action["kind"];

/** The Controller's lifecycle: configure, boot once, pause/resume, and the guest's end. */
export type Phase = "Configuring" | "Running" | "Paused" | "Stopped";

/**
 * InstanceInfo `state` (yaml enum "Not started" | "Running" | "Paused"). "Stopped" is petasan's
 * addition: its API outlives the guest, Firecracker's process does not.
 */
export type InstanceState = "Not started" | "Running" | "Paused" | "Stopped";

export interface InstanceInfo {
  app_name: string;
  id: string;
  state: InstanceState;
  vmm_version: string;
}

/** GET /version (yaml FirecrackerVersion). */
export interface VersionInfo {
  firecracker_version: string;
}

/** GET /mmds: the data store, any JSON value, written as itself (toJSON); an empty store reads as {}, as in Firecracker. */
export class MmdsContents {
  constructor(readonly value: unknown) {}
  toJSON(): unknown {
    return this.value ?? {};
  }
}

export type ApiData = InstanceInfo | VersionInfo | MachineConfig | FullVmConfiguration | MmdsContents | BalloonConfig | BalloonStatsData;

/** `data` absent: success with nothing to return (HTTP 204). */
export type ActionResult = { ok: true; data?: ApiData } | { ok: false; error: ActionError };
