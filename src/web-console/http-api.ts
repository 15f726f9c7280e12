/**
 * The console's HTTP API (JSON), which the page uses and scripts may too:
 *   GET    /api/vms                        the VMs, with state, vCPUs, memory, uptime
 *   POST   /api/vms                        {config, name?, start?}: create (and start) a VM from Firecracker's config JSON
 *                                          {snapshot: {snapshotPath, memFilePath, resume?, trackDirtyPages?}, name?, start?}:
 *                                          restore one from a snapshot (a new VM, listed as any other)
 *   GET    /api/vms/ID                     one VM, with its config, log lines and stats history
 *   DELETE /api/vms/ID                     stop it if it runs and remove it from the list
 *   POST   /api/vms/ID/ACTION              start, pause, resume, stop, ctrl-alt-del (body {})
 *   POST   /api/vms/ID/snapshot            {snapshotPath, memFilePath, type?, overwrite?}: write a snapshot (a running
 *                                          VM is paused for it and resumed after)
 *   PUT    /api/vms/ID/drives/DRIVE        {path}: serve the drive from another image (running VM)
 * Every error is a status (400 bad input, 401/403 refused, 404 unknown, 405, 409 wrong state, 413, 415)
 * and a body {"error": "one line"}. Bodies are JSON (Content-Type: application/json), at most MAX_BODY bytes.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { VmStateError } from "../lib/index.js";
import { ConsoleRequestError, type ConsoleVm, type VmRegistry } from "./vm-registry.js";
import { parseRestoreRequest, parseSnapshotRequest } from "./snapshot-requests.js";

export const MAX_BODY = 1024 * 1024;

/** A request that fails before it reaches a VM: status and message. */
class HttpError extends Error {
  override readonly name = "HttpError";
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

type Json = Record<string, unknown>;

export function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store", "Content-Length": Buffer.byteLength(text) });
  response.end(text);
}

export function sendError(response: ServerResponse, status: number, message: string): void {
  sendJson(response, status, { error: message });
}

/** Serves one /api/ request; every failure becomes a JSON error, never an exception. */
export async function handleApi(registry: VmRegistry, request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
  try {
    const [status, body] = await route(registry, request, url);
    sendJson(response, status, body);
  } catch (error) {
    // A body left unread (too large, wrong type) is not drained: the connection closes after the answer.
    if (!request.complete) response.setHeader("Connection", "close");
    if (error instanceof HttpError || error instanceof ConsoleRequestError) sendError(response, error.status, error.message);
    else if (error instanceof VmStateError) sendError(response, 409, error.message);
    else sendError(response, 500, `internal error: ${(error as Error).message}`);
  }
}

/** A path segment, percent-decoded; undefined when the encoding is malformed ("%E0%A4"). */
export function decodePathPart(part: string): string | undefined {
  try {
    return decodeURIComponent(part);
  } catch {
    return undefined;
  }
}

async function route(registry: VmRegistry, request: IncomingMessage, url: URL): Promise<[number, unknown]> {
  const method = request.method ?? "GET";
  const decoded = url.pathname.split("/").slice(2).map(decodePathPart); // after "/api/"
  if (decoded.includes(undefined)) throw new HttpError(400, `${url.pathname}: malformed percent-encoding`);
  const parts = decoded as string[];
  if (parts[0] !== "vms") throw new HttpError(404, `no API resource ${url.pathname}`);

  if (parts.length === 1) {
    if (method === "GET") return [200, { vms: registry.list().map((vm) => vm.summary()) }];
    if (method === "POST") {
      const body = await readJson(request);
      if (body.config !== undefined && body.snapshot !== undefined) throw new HttpError(400, "send `config` (a new VM) or `snapshot` (a restored one), not both");
      if (body.config === undefined && body.snapshot === undefined) {
        throw new HttpError(400, "missing field `config` (Firecracker's config-file JSON, as an object or as text) or `snapshot` ({snapshotPath, memFilePath})");
      }
      if (body.name !== undefined && (typeof body.name !== "string" || body.name.length > 64)) throw new HttpError(400, "name: expected a string of at most 64 characters");
      if (body.start !== undefined && typeof body.start !== "boolean") throw new HttpError(400, "start: expected true or false");
      const options = { name: body.name as string | undefined, start: body.start as boolean | undefined };
      const entry = body.snapshot !== undefined
        ? await registry.restore(parseRestoreRequest(body.snapshot), options)
        : await registry.create(body.config, options);
      return [201, entry.summary()];
    }
    throw methodNotAllowed(method, url, "GET, POST");
  }

  const entry = registry.get(parts[1]);
  if (parts.length === 2) {
    if (method === "GET") return [200, details(entry)];
    if (method === "DELETE") {
      await registry.remove(entry.id); // after a snapshot being written
      return [200, { removed: entry.id }];
    }
    throw methodNotAllowed(method, url, "GET, DELETE");
  }

  if (parts.length === 3) {
    const action = parts[2];
    if (method !== "POST") throw methodNotAllowed(method, url, "POST");
    const body = await readJson(request);
    // While a snapshot is being written the VM stays as it is; stop waits for it to finish.
    if (action !== "stop") entry.assertNoSnapshot(action);
    switch (action) {
      case "start":
        await registry.start(entry);
        break;
      case "pause":
        await entry.vm.pause();
        break;
      case "resume":
        entry.vm.resume();
        break;
      case "stop":
        await entry.snapshotDone();
        await entry.vm.stop("stopped from the web console");
        break;
      case "ctrl-alt-del":
        await sendCtrlAltDel(entry);
        break;
      case "snapshot":
        entry.assertCanSnapshot(); // the state first: a VM that cannot be saved now is a 409, whatever the body
        await registry.snapshot(entry, parseSnapshotRequest(body));
        break;
      default:
        throw new HttpError(404, `no action ${JSON.stringify(action)}: expected start, pause, resume, stop, ctrl-alt-del or snapshot`);
    }
    return [200, entry.summary()];
  }

  if (parts.length === 4 && parts[2] === "drives") {
    if (method !== "PUT") throw methodNotAllowed(method, url, "PUT");
    const body = await readJson(request);
    if (typeof body.path !== "string" || body.path === "") throw new HttpError(400, "path: expected the new image's path on this host");
    if (!entry.vm.config.drives.some((d) => d.drive_id === parts[3])) throw new HttpError(404, `VM ${entry.id} has no drive ${JSON.stringify(parts[3])}`);
    entry.assertNoSnapshot("swapping a drive");
    const path = registry.checkPath(body.path, `drives[${parts[3]}].path_on_host`);
    try {
      await entry.vm.swapDrive(parts[3], path);
    } catch (error) {
      if (error instanceof VmStateError) throw error;
      throw new HttpError(400, `swapping drive ${parts[3]}: ${(error as Error).message}`);
    }
    return [200, entry.summary()];
  }
  throw new HttpError(404, `no API resource ${url.pathname}`);
}

/** The i8042's 16-byte buffer may be full (the guest does not read its keyboard): a 409 the user can retry. */
async function sendCtrlAltDel(entry: ConsoleVm): Promise<void> {
  try {
    await entry.vm.sendCtrlAltDel();
  } catch (error) {
    if (error instanceof VmStateError) throw error;
    throw new HttpError(409, `Ctrl+Alt+Del: ${(error as Error).message}`);
  }
}

function details(entry: ConsoleVm): Json {
  return { ...entry.summary(), config: entry.vm.config, logs: entry.logs, stats: entry.stats.samples };
}

function methodNotAllowed(method: string, url: URL, allowed: string): HttpError {
  return new HttpError(405, `${method} ${url.pathname} is not allowed (allowed: ${allowed})`);
}

/**
 * The request's JSON object body ({} when empty). Only application/json is taken: a page on another site
 * cannot send it without a CORS preflight, which this server never grants (see access.ts).
 */
async function readJson(request: IncomingMessage): Promise<Json> {
  const type = (request.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase();
  if (type !== "application/json") throw new HttpError(415, `send the body as JSON with Content-Type: application/json (got ${type || "none"})`);
  const declared = Number(request.headers["content-length"] ?? 0);
  if (declared > MAX_BODY) throw new HttpError(413, `the body is ${declared} bytes; at most ${MAX_BODY}`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new HttpError(413, `the body is over ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, `the body is not JSON: ${(error as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new HttpError(400, "the body must be a JSON object");
  return value as Json;
}
