/**
 * API request counts in the metrics, under Firecracker's names (api_server/request/*.rs bump
 * get_api_requests.instance_info_count, put_api_requests.drive_count / drive_fails, ...). Firecracker
 * counts while parsing, so its *_fails include malformed bodies; petasan counts actions as the
 * Controller answers them, so its *_fails are requests that parsed but failed, and a request rejected
 * before it became an action (bad JSON, unknown path) is not counted.
 */
import { Controller, type Action, type ActionKind, type ActionResult, type ControllerOptions } from "../api/index.js";
import type { MetricsRecorder } from "../lib/index.js";

type RequestCounter = readonly ["get_api_requests" | "put_api_requests" | "patch_api_requests", string];

/** Each action's counter; undefined where Firecracker counts none (GET /vm/config, PATCH /vm, PUT /entropy). */
const REQUEST_COUNTERS: { readonly [K in ActionKind]: RequestCounter | undefined } = {
  getInstanceInfo: ["get_api_requests", "instance_info"],
  getVersion: ["get_api_requests", "vmm_version"],
  getMachineConfig: ["get_api_requests", "machine_cfg"],
  getVmConfig: undefined,
  putBootSource: ["put_api_requests", "boot_source"],
  putMachineConfig: ["put_api_requests", "machine_cfg"],
  patchMachineConfig: ["patch_api_requests", "machine_cfg"],
  putDrive: ["put_api_requests", "drive"],
  patchDrive: ["patch_api_requests", "drive"],
  putNetworkInterface: ["put_api_requests", "network"],
  patchNetworkInterface: ["patch_api_requests", "network"],
  putEntropy: undefined,
  putVsock: ["put_api_requests", "vsock"],
  getMmds: ["get_api_requests", "mmds"],
  putMmds: ["put_api_requests", "mmds"],
  patchMmds: ["patch_api_requests", "mmds"],
  // Firecracker's parse_put_mmds counts /mmds/config under the same name.
  putMmdsConfig: ["put_api_requests", "mmds"],
  putLogger: ["put_api_requests", "logger"],
  putMetrics: ["put_api_requests", "metrics"],
  instanceStart: ["put_api_requests", "actions"],
  sendCtrlAltDel: ["put_api_requests", "actions"],
  flushMetrics: ["put_api_requests", "actions"],
  setVmState: undefined,
  createSnapshot: undefined,
  loadSnapshot: undefined,
  // Firecracker's api_server/request/balloon.rs counts no balloon requests.
  putBalloon: undefined,
  getBalloon: undefined,
  patchBalloon: undefined,
  getBalloonStats: undefined,
  patchBalloonStats: undefined,
};

/** A Controller that counts each action it answers: <name>_count, and <name>_fails when it failed. */
export class MeteredController extends Controller {
  constructor(options: ControllerOptions, private readonly metrics: MetricsRecorder) {
    super(options);
  }

  override async handle(action: Action): Promise<ActionResult> {
    const counter = REQUEST_COUNTERS[action.kind];
    // Counted first, so a FlushMetrics line includes the request that asked for it.
    if (counter !== undefined) this.metrics.count(counter[0], `${counter[1]}_count`);
    const result = await super.handle(action);
    if (counter !== undefined && !result.ok) this.metrics.count(counter[0], `${counter[1]}_fails`);
    return result;
  }
}
