/**
 * HTTP request -> Action, following Firecracker's api_server/parsed_request.rs: the method/body
 * checks first (GET takes no body, PUT/PATCH need one), then the path, then the path id, the
 * JSON body against its schema, and path id == body id.
 */
import {
  balloonSchema,
  balloonStatsUpdateSchema,
  balloonUpdateSchema,
  bootSourceSchema,
  ConfigError,
  driveSchema,
  driveUpdateSchema,
  entropySchema,
  vsockSchema,
  isResourceId,
  JsonSyntaxError,
  loggerSchema,
  machineConfigSchema,
  machineConfigUpdateSchema,
  metricsSchema,
  mmdsConfigSchema,
  networkInterfaceSchema,
  networkInterfaceUpdateSchema,
  parseJsonText,
  serdeMessage,
  type ObjectSchema,
} from "../config/index.js";
import type { Action } from "./actions.js";
import {
  badRequest,
  deserializeFailure,
  EMPTY_ID,
  emptyBody,
  GET_WITH_BODY,
  INVALID_ID,
  invalidPathMethod,
  notSupportedYet,
} from "./errors.js";
import { instanceActionSchema, vmStateSchema } from "./request-bodies.js";
import { snapshotCreateSchema, snapshotLoadSchema } from "./snapshot-bodies.js";

interface Route {
  method: "GET" | "PUT" | "PATCH";
  /** Path segments after the leading "/"; "{id}" stands for a resource id. */
  path: string;
  /** Builds the action from the checked body (undefined for GET) and the path id. */
  toAction(body: string | undefined, id: string): Action;
}

const DRIVE_ID_MISMATCH = "The id from the path does not match the id from the body!";
const ifaceIdMismatch = (pathId: string, bodyId: string) =>
  `The id from the path [${pathId}] does not match the id from the body [${bodyId}]!`;

const ROUTES: readonly Route[] = [
  { method: "GET", path: "", toAction: () => ({ kind: "getInstanceInfo" }) },
  { method: "GET", path: "version", toAction: () => ({ kind: "getVersion" }) },
  { method: "GET", path: "machine-config", toAction: () => ({ kind: "getMachineConfig" }) },
  { method: "GET", path: "vm/config", toAction: () => ({ kind: "getVmConfig" }) },
  {
    method: "PUT",
    path: "actions",
    toAction(body) {
      const { action_type } = parseBody(instanceActionSchema, body);
      switch (action_type) {
        case "InstanceStart":
          return { kind: "instanceStart" };
        case "SendCtrlAltDel":
          return { kind: "sendCtrlAltDel" };
        case "FlushMetrics":
          return { kind: "flushMetrics" };
      }
    },
  },
  { method: "PUT", path: "boot-source", toAction: (body) => ({ kind: "putBootSource", bootSource: parseBody(bootSourceSchema, body) }) },
  {
    method: "PUT",
    path: "machine-config",
    toAction: (body) => ({ kind: "putMachineConfig", machineConfig: parseBody(machineConfigSchema, body) }),
  },
  {
    method: "PATCH",
    path: "machine-config",
    toAction(body) {
      const update = parseBody(machineConfigUpdateSchema, body);
      if (Object.keys(update).length === 0) throw badRequest(emptyBody("PATCH"));
      return { kind: "patchMachineConfig", update };
    },
  },
  {
    method: "PUT",
    path: "drives/{id}",
    toAction(body, id) {
      const drive = parseBody(driveSchema, body);
      if (drive.drive_id !== id) throw badRequest(DRIVE_ID_MISMATCH);
      return { kind: "putDrive", drive };
    },
  },
  {
    method: "PATCH",
    path: "drives/{id}",
    toAction(body, id) {
      const update = parseBody(driveUpdateSchema, body);
      if (update.drive_id !== id) throw badRequest(DRIVE_ID_MISMATCH);
      return { kind: "patchDrive", update };
    },
  },
  {
    method: "PUT",
    path: "network-interfaces/{id}",
    toAction(body, id) {
      const networkInterface = parseBody(networkInterfaceSchema, body);
      if (networkInterface.iface_id !== id) throw badRequest(ifaceIdMismatch(id, networkInterface.iface_id));
      return { kind: "putNetworkInterface", networkInterface };
    },
  },
  {
    method: "PATCH",
    path: "network-interfaces/{id}",
    toAction(body, id) {
      const update = parseBody(networkInterfaceUpdateSchema, body);
      if (update.iface_id !== id) throw badRequest(ifaceIdMismatch(id, update.iface_id));
      return { kind: "patchNetworkInterface", update };
    },
  },
  { method: "PUT", path: "entropy", toAction: (body) => ({ kind: "putEntropy", entropy: parseBody(entropySchema, body) }) },
  { method: "PUT", path: "vsock", toAction: (body) => ({ kind: "putVsock", vsock: parseBody(vsockSchema, body) }) },
  { method: "PUT", path: "logger", toAction: (body) => ({ kind: "putLogger", logger: parseBody(loggerSchema, body) }) },
  { method: "PUT", path: "metrics", toAction: (body) => ({ kind: "putMetrics", metrics: parseBody(metricsSchema, body) }) },
  { method: "GET", path: "mmds", toAction: () => ({ kind: "getMmds" }) },
  { method: "PUT", path: "mmds", toAction: (body) => ({ kind: "putMmds", data: parseJsonBody(body) }) },
  { method: "PATCH", path: "mmds", toAction: (body) => ({ kind: "patchMmds", data: parseJsonBody(body) }) },
  { method: "PUT", path: "mmds/config", toAction: (body) => ({ kind: "putMmdsConfig", config: parseBody(mmdsConfigSchema, body) }) },
  {
    method: "PUT",
    path: "mmds/{id}",
    toAction(_body, id) {
      throw badRequest(`Unrecognized PUT request path \`${id}\`.`);
    },
  },
  { method: "PATCH", path: "vm", toAction: (body) => ({ kind: "setVmState", state: parseBody(vmStateSchema, body).state }) },
  { method: "PUT", path: "snapshot/create", toAction: (body) => ({ kind: "createSnapshot", params: parseBody(snapshotCreateSchema, body) }) },
  { method: "PUT", path: "snapshot/load", toAction: (body) => ({ kind: "loadSnapshot", params: parseBody(snapshotLoadSchema, body) }) },
  { method: "PUT", path: "balloon", toAction: (body) => ({ kind: "putBalloon", balloon: parseBody(balloonSchema, body) }) },
  { method: "GET", path: "balloon", toAction: () => ({ kind: "getBalloon" }) },
  { method: "PATCH", path: "balloon", toAction: (body) => ({ kind: "patchBalloon", update: parseBody(balloonUpdateSchema, body) }) },
  { method: "GET", path: "balloon/statistics", toAction: () => ({ kind: "getBalloonStats" }) },
  { method: "PATCH", path: "balloon/statistics", toAction: (body) => ({ kind: "patchBalloonStats", update: parseBody(balloonStatsUpdateSchema, body) }) },
];

/**
 * The swagger's endpoints for features petasan does not have yet, with the feature's name: they get a
 * 400 saying so instead of Firecracker's "Invalid request method and/or path", which would suggest a typo.
 */
const NOT_YET: readonly { method: string; path: string; feature: string }[] = [
  ...["PATCH /balloon/hinting/start", "GET /balloon/hinting/status", "PATCH /balloon/hinting/stop"].map((e) => endpoint(e, "balloon free page hinting")),
  endpoint("PUT /cpu-config", "custom CPU templates (machine-config's cpu_template is supported)"),
  ...["PUT /pmem/{id}", "PATCH /pmem/{id}"].map((e) => endpoint(e, "virtio-pmem devices")),
  endpoint("PUT /serial", "configuring the serial console (it is petasan's stdin/stdout)"),
  ...["PUT /hotplug/memory", "PATCH /hotplug/memory", "GET /hotplug/memory"].map((e) => endpoint(e, "memory hotplug")),
];

function endpoint(methodAndPath: string, feature: string) {
  const [method, path] = methodAndPath.split(" ");
  return { method, path: path.slice(1), feature };
}

/** The feature an unsupported swagger endpoint belongs to, if `segments` name one. */
function notYetFeature(method: string, segments: string[]): string | undefined {
  return NOT_YET.find(({ method: m, path }) => {
    const pattern = path.split("/");
    return m === method && pattern.length === segments.length && pattern.every((part, i) => part === "{id}" || part === segments[i]);
  })?.feature;
}

/**
 * Maps one request to an Action or throws an ActionError (400) saying what is wrong.
 * `body` is the decoded request body, undefined when the request had none.
 */
export function parseRequest(method: string, url: string, body: string | undefined): Action {
  // Origin-form ("/drives/x?y") or absolute-form ("http://localhost/drives/x"); the query is ignored.
  const path = url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, "").split("?")[0] || "/";
  if (method === "GET" && body !== undefined) throw badRequest(GET_WITH_BODY);
  if ((method === "PUT" || method === "PATCH") && body === undefined) throw badRequest(emptyBody(method));
  // Like Firecracker's split_terminator: "/drives/x/" is "/drives/x".
  const segments = path.replace(/^\/+/, "").replace(/\/$/, "").split("/");
  for (const route of ROUTES) {
    if (route.method !== method) continue;
    const pattern = route.path.split("/");
    if (pattern[0] !== segments[0]) continue;
    if (pattern[1] === "{id}" && segments.length === 1) throw badRequest(EMPTY_ID);
    if (pattern.length !== segments.length) continue;
    if (pattern[1] !== undefined && pattern[1] !== "{id}" && pattern[1] !== segments[1]) continue;
    const id = pattern[1] === "{id}" ? checkedId(segments[1]) : "";
    return route.toAction(body, id);
  }
  const feature = notYetFeature(method, segments);
  if (feature !== undefined) throw badRequest(notSupportedYet(`${method} ${path}`, feature));
  throw badRequest(invalidPathMethod(method, path));
}

function checkedId(segment: string): string {
  let id: string;
  try {
    id = decodeURIComponent(segment);
  } catch {
    throw badRequest(INVALID_ID);
  }
  if (id === "") throw badRequest(EMPTY_ID);
  if (!isResourceId(id)) throw badRequest(INVALID_ID);
  return id;
}

/** Any JSON value (the MMDS contents). */
function parseJsonBody(body: string | undefined): unknown {
  try {
    return parseJsonText(body ?? "");
  } catch (error) {
    if (error instanceof JsonSyntaxError) throw badRequest(deserializeFailure(error.message), error);
    throw error;
  }
}

/**
 * Whether the request uses a field Firecracker deprecates (api_server/request/machine_configuration.rs:
 * cpu_template in PUT and PATCH /machine-config), which its response marks with a Deprecation header.
 */
export function isDeprecated(action: Action): boolean {
  if (action.kind === "putMachineConfig") return action.machineConfig.cpu_template !== undefined;
  if (action.kind === "patchMachineConfig") return action.update.cpu_template !== undefined;
  return false;
}

/** A body that does not fit its schema gets serde's wording where serde has one (see serde-message.ts). */
function parseBody<T>(schema: ObjectSchema<T>, body: string | undefined): T {
  const text = body ?? "";
  try {
    return schema.parse(parseJsonText(text));
  } catch (error) {
    if (error instanceof ConfigError) throw badRequest(deserializeFailure(serdeMessage(error, text) ?? error.message), error);
    if (error instanceof JsonSyntaxError) throw badRequest(deserializeFailure(error.message), error);
    throw error;
  }
}
