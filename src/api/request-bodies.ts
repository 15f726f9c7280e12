/** Bodies that only the API takes (yaml InstanceActionInfo and Vm), with the config toolkit. */
import { objectSchema, oneOf, required, type ObjectSchema } from "../config/index.js";

export type InstanceActionType = "FlushMetrics" | "InstanceStart" | "SendCtrlAltDel";

export interface InstanceActionInfo {
  action_type: InstanceActionType;
}

export interface VmStateRequest {
  state: "Paused" | "Resumed";
}

export const instanceActionSchema: ObjectSchema<InstanceActionInfo> = objectSchema<InstanceActionInfo>("InstanceActionInfo", {
  action_type: required(oneOf<InstanceActionType>(["FlushMetrics", "InstanceStart", "SendCtrlAltDel"])),
});

export const vmStateSchema: ObjectSchema<VmStateRequest> = objectSchema<VmStateRequest>("Vm", {
  state: required(oneOf<VmStateRequest["state"]>(["Paused", "Resumed"])),
});
