/**
 * The Firecracker-compatible HTTP/1.1 API on a Unix socket: reads a bounded body, turns the
 * request into an Action (routes.ts), hands it to the Controller and writes the result as
 * Firecracker does: 204 with no body, 200 with JSON, errors as {"fault_message": "..."}.
 * The Content-Type of requests is ignored (curl --data sends a form type).
 */
import { lstat, unlink } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Controller } from "./controller.js";
import { ActionError, BAD_REQUEST, deserializeFailure, describeError, INTERNAL_SERVER_ERROR, payloadTooLarge } from "./errors.js";
import { isDeprecated, parseRequest } from "./routes.js";
import { ApiServerError, claimSocketPath } from "./unix-socket.js";

/** Firecracker's HTTP_MAX_PAYLOAD_SIZE (vmm/src/lib.rs), its default --http-api-max-payload-size. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 51200;

export interface ApiServerOptions {
  socketPath: string;
  controller: Controller;
  maxPayloadBytes?: number;
}

export interface ApiServer {
  readonly socketPath: string;
  /** Stops accepting, drops open connections and removes the socket file. */
  close(): Promise<void>;
}

export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const { socketPath, controller } = options;
  const limit = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
  await claimSocketPath(socketPath);
  const server = createServer((request, response) => {
    serve(request, response, controller, limit).catch((error: unknown) => {
      if (!response.headersSent) reply(response, INTERNAL_SERVER_ERROR, { fault_message: `Internal server error: ${describeError(error)}` });
      else response.destroy();
    });
  });
  // Firecracker's micro_http never closes an idle connection; Node's default closes it after 5 s, and a
  // client that keeps connections alive (Go's http.Transport, as firecracker-go-sdk uses) then gets EOF on
  // its next request over it, which it does not retry for a PUT.
  server.keepAliveTimeout = 0;
  await listen(server, socketPath);
  const inode = (await lstat(socketPath)).ino;
  return {
    socketPath,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await removeOwnSocket(socketPath, inode);
    },
  };
}

function listen(server: Server, socketPath: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", (error) => reject(new ApiServerError(socketPath, `cannot listen: ${error.message}`, { cause: error })));
    server.listen(socketPath, () => resolve());
  });
}

/** Unlinks the socket file unless another server has replaced it since. */
async function removeOwnSocket(socketPath: string, inode: number): Promise<void> {
  try {
    if ((await lstat(socketPath)).ino === inode) await unlink(socketPath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
}

async function serve(request: IncomingMessage, response: ServerResponse, controller: Controller, limit: number): Promise<void> {
  const declared = Number(request.headers["content-length"] ?? 0);
  if (declared > limit) {
    // Answer without reading the body, and close: the rest of it is never looked at.
    return reply(response, BAD_REQUEST, { fault_message: payloadTooLarge(declared, limit) }, true);
  }
  const bytes = await readBody(request, limit);
  if (typeof bytes === "number") return reply(response, BAD_REQUEST, { fault_message: payloadTooLarge(bytes, limit) }, true);
  let body: string | undefined;
  try {
    body = bytes.length === 0 ? undefined : new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return reply(response, BAD_REQUEST, { fault_message: deserializeFailure("the body is not valid UTF-8") });
  }
  let action;
  try {
    action = parseRequest(request.method ?? "", request.url ?? "/", body);
  } catch (error) {
    if (error instanceof ActionError) return reply(response, error.status, { fault_message: error.faultMessage });
    throw error;
  }
  // Firecracker marks a request using a deprecated field with "Deprecation: true" (micro_http set_deprecation).
  if (isDeprecated(action)) response.setHeader("Deprecation", "true");
  const result = await controller.handle(action);
  if (!result.ok) return reply(response, result.error.status, { fault_message: result.error.faultMessage });
  reply(response, result.data === undefined ? 204 : 200, result.data);
}

/**
 * The whole body, or, once it passes `limit` bytes, the number received so far (a chunked body
 * has no length up front) and the rest is left unread.
 */
function readBody(request: IncomingMessage, limit: number): Promise<Buffer | number> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        request.off("data", onData);
        resolve(size);
      } else chunks.push(chunk);
    };
    request.on("data", onData);
    request.once("end", () => resolve(Buffer.concat(chunks)));
    request.once("error", reject);
  });
}

function reply(response: ServerResponse, status: number, body?: unknown, closeConnection = false): void {
  const headers: Record<string, string | number> = { Server: "petasan" };
  if (closeConnection) headers.Connection = "close";
  if (body === undefined) {
    response.writeHead(status, headers).end();
    return;
  }
  const text = JSON.stringify(body);
  headers["Content-Type"] = "application/json";
  headers["Content-Length"] = Buffer.byteLength(text);
  response.writeHead(status, headers).end(text);
}
