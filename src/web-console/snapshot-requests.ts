/**
 * The bodies of the console's two snapshot requests, checked field by field (a 400 naming the field):
 *   POST /api/vms/ID/snapshot   {snapshotPath, memFilePath, type?: "Full" | "Diff", overwrite?: boolean}
 *   POST /api/vms               {snapshot: {snapshotPath, memFilePath, resume?, trackDirtyPages?}, name?, start?}
 * They map onto the library's vm.snapshot() (Firecracker's PUT /snapshot/create) and loadSnapshot() (PUT
 * /snapshot/load). A field the console does not take is refused, not ignored: network overrides, for one, are
 * not offered (a restored VM's taps need --allow-net and the snapshot's own tap names).
 */
import { ConsoleRequestError } from "./vm-registry.js";

export interface SnapshotRequest {
  snapshotPath: string;
  memFilePath: string;
  /** Full (default), or Diff: only the pages written since the last snapshot; needs dirty page tracking. */
  type: "Full" | "Diff";
  /** Replace files that exist (default false: an existing file at either path is refused). */
  overwrite: boolean;
}

export interface RestoreRequest {
  snapshotPath: string;
  memFilePath: string;
  /** Run at once (default) or stay Paused once started. */
  resume: boolean;
  /** Track dirty pages, so that Diff snapshots of the restored VM can be taken (default false). */
  trackDirtyPages: boolean;
}

type Json = Record<string, unknown>;

export function parseSnapshotRequest(body: Json): SnapshotRequest {
  onlyFields(body, "snapshot", ["snapshotPath", "memFilePath", "type", "overwrite"]);
  if (body.type !== undefined && body.type !== "Full" && body.type !== "Diff") throw bad(`type: expected "Full" or "Diff" (got ${JSON.stringify(body.type)})`);
  return {
    snapshotPath: pathField(body, "snapshotPath", "where to write the snapshot's state file"),
    memFilePath: pathField(body, "memFilePath", "where to write the guest's memory file"),
    type: (body.type as "Full" | "Diff" | undefined) ?? "Full",
    overwrite: flag(body, "overwrite", false),
  };
}

/** `value` is the `snapshot` field of POST /api/vms. */
export function parseRestoreRequest(value: unknown): RestoreRequest {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw bad("snapshot: expected {\"snapshotPath\": …, \"memFilePath\": …}");
  const body = value as Json;
  onlyFields(body, "snapshot", ["snapshotPath", "memFilePath", "resume", "trackDirtyPages"]);
  return {
    snapshotPath: pathField(body, "snapshotPath", "the snapshot's state file", "snapshot."),
    memFilePath: pathField(body, "memFilePath", "the snapshot's memory file", "snapshot."),
    resume: flag(body, "resume", true, "snapshot."),
    trackDirtyPages: flag(body, "trackDirtyPages", false, "snapshot."),
  };
}

function bad(message: string): ConsoleRequestError {
  return new ConsoleRequestError(400, message);
}

function onlyFields(body: Json, what: string, known: string[]): void {
  const unknown = Object.keys(body).filter((key) => !known.includes(key));
  if (unknown.length > 0) throw bad(`${what}: unknown field ${JSON.stringify(unknown[0])} (the fields are ${known.join(", ")})`);
}

function pathField(body: Json, name: string, meaning: string, prefix = ""): string {
  const value = body[name];
  if (typeof value !== "string" || value === "") throw bad(`${prefix}${name}: expected ${meaning}, an absolute path on this host`);
  return value;
}

function flag(body: Json, name: string, fallback: boolean, prefix = ""): boolean {
  const value = body[name];
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") throw bad(`${prefix}${name}: expected true or false`);
  return value;
}
