/**
 * In which phases each action is allowed. A mapped type over ActionKind, so adding an action
 * without deciding its phases does not compile. Firecracker's split (rpc_interface.rs
 * PrebootApiController / RuntimeApiController): configuration before boot, VM control after.
 */
import type { ActionKind, Phase } from "./actions.js";
import { NOT_SUPPORTED_POST_BOOT, NOT_SUPPORTED_PRE_BOOT, VM_STOPPED } from "./errors.js";

const ANY: readonly Phase[] = ["Configuring", "Running", "Paused", "Stopped"];
const PRE_BOOT: readonly Phase[] = ["Configuring"];
const POST_BOOT: readonly Phase[] = ["Running", "Paused"];
/** Firecracker serves these in both of its controllers (rpc_interface.rs). */
const PRE_AND_POST_BOOT: readonly Phase[] = ["Configuring", "Running", "Paused"];

export const ALLOWED_PHASES: { readonly [K in ActionKind]: readonly Phase[] } = {
  getInstanceInfo: ANY,
  getVersion: ANY,
  getMachineConfig: ANY,
  getVmConfig: ANY,
  getMmds: ANY,
  putMmds: PRE_AND_POST_BOOT,
  patchMmds: PRE_AND_POST_BOOT,
  putMmdsConfig: PRE_BOOT,
  putBootSource: PRE_BOOT,
  putMachineConfig: PRE_BOOT,
  patchMachineConfig: PRE_BOOT,
  putDrive: PRE_BOOT,
  putNetworkInterface: PRE_BOOT,
  putEntropy: PRE_BOOT,
  putVsock: PRE_BOOT,
  putLogger: PRE_BOOT,
  putMetrics: PRE_BOOT,
  putBalloon: PRE_BOOT,
  getBalloon: ["Configuring", "Running", "Paused"],
  patchBalloon: POST_BOOT,
  getBalloonStats: POST_BOOT,
  patchBalloonStats: POST_BOOT,
  instanceStart: PRE_BOOT,
  patchDrive: POST_BOOT,
  patchNetworkInterface: POST_BOOT,
  sendCtrlAltDel: POST_BOOT,
  flushMetrics: POST_BOOT,
  setVmState: POST_BOOT,
  // Firecracker: create on a paused microVM (the controller says so when it runs), load in a fresh process.
  createSnapshot: POST_BOOT,
  loadSnapshot: PRE_BOOT,
};

/** The fault message refusing `kind` in `phase`, or undefined when it is allowed. */
export function phaseRefusal(phase: Phase, kind: ActionKind): string | undefined {
  if (ALLOWED_PHASES[kind].includes(phase)) return undefined;
  switch (phase) {
    case "Configuring":
      return NOT_SUPPORTED_PRE_BOOT;
    case "Running":
    case "Paused":
      return NOT_SUPPORTED_POST_BOOT;
    case "Stopped":
      return VM_STOPPED;
  }
}
