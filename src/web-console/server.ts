/**
 * `petasan console`: an HTTP and WebSocket server for the page and its API, on top of the VMs this process
 * runs (vm-registry.ts). WebSockets:
 *   /api/vms/ID/console   the VM's serial console: output as binary messages (scrollback first), input as
 *                         messages to it; any number of viewers at once
 *   /api/events           JSON messages: {type: "vms", vms} when the list changes, {type: "sample", id, sample}
 *                         once a second per running VM; the first message is {type: "hello", vms, stats}
 * Every request goes through the access policy first (access.ts); a WebSocket that closes or fails is
 * forgotten at once, so a browser closing mid-stream leaves nothing behind.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import { AccessPolicy } from "./access.js";
import { AllowedPaths } from "./allowed-paths.js";
import { decodePathPart, handleApi, sendError } from "./http-api.js";
import type { ListenAddress } from "./listen-address.js";
import { loadPageAssets, type Asset } from "./page-assets.js";
import { VmRegistry, type ConsoleVm } from "./vm-registry.js";

/** Largest message a page may send (console input). */
export const MAX_WS_MESSAGE = 64 * 1024;
/** An events client this far behind is dropped (it reconnects and gets a fresh hello). */
const MAX_EVENTS_BACKLOG = 4 * 1024 * 1024;
/**
 * Every WebSocket is pinged this often and dropped if it has not answered the previous ping: a browser that
 * vanished without closing its connection (a laptop lid, a lost network) is forgotten within two periods.
 */
export const HEARTBEAT_MS = 30_000;

export interface ConsoleServerOptions {
  listen: ListenAddress;
  /** Folders whose files VMs may use (--allow). */
  allow: readonly string[];
  /** Whether configs may attach network interfaces (taps). */
  allowNet?: boolean;
  /** The WebSocket heartbeat period (default HEARTBEAT_MS). */
  heartbeatMs?: number;
}

export interface ConsoleServer {
  /** The page's URL, with the token when one is needed. */
  readonly url: string;
  readonly token?: string;
  readonly registry: VmRegistry;
  /** WebSockets open now (console viewers and event streams). */
  openSockets(): number;
  /** Stops every VM and closes every connection. */
  close(): Promise<void>;
}

export async function startConsoleServer(options: ConsoleServerOptions): Promise<ConsoleServer> {
  const paths = new AllowedPaths(options.allow);
  const assets = loadPageAssets();
  const registry = new VmRegistry(paths, { allowNet: options.allowNet ?? false });
  // One listener pair per events client, however many tabs are open.
  registry.setMaxListeners(0);
  const { listen } = options;
  const display = listen.host.includes(":") ? `[${listen.host}]:${listen.port}` : `${listen.host}:${listen.port}`;
  const access = new AccessPolicy({ loopback: listen.loopback, display });
  const sockets = new WebSocketServer({ noServer: true, maxPayload: MAX_WS_MESSAGE });

  const server = createServer((request, response) => {
    const url = requestUrl(request);
    const refused = access.check(request, url, request.method !== "GET" && request.method !== "HEAD");
    if (refused) {
      // The body, if any, is left unread: the connection closes after the answer rather than being reused.
      response.setHeader("Connection", "close");
      return sendError(response, refused.status, refused.message);
    }
    if (url.pathname.startsWith("/api/")) return void handleApi(registry, request, response, url);
    serveAsset(assets, request, response, url, access);
  });
  server.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", () => socket.destroy());
    const url = requestUrl(request);
    const refused = access.check(request, url, true);
    if (refused) return rejectUpgrade(socket, refused.status, refused.message);
    const consoleMatch = /^\/api\/vms\/([^/]+)\/console$/.exec(url.pathname);
    if (consoleMatch) {
      const entry = registry.list().find((vm) => vm.id === decodePathPart(consoleMatch[1]));
      if (!entry) return rejectUpgrade(socket, 404, `no VM ${JSON.stringify(consoleMatch[1])} in this console`);
      return sockets.handleUpgrade(request, socket, head, (ws) => {
        sockets.emit("connection", ws, request);
        attachViewer(ws, entry, registry);
      });
    }
    if (url.pathname === "/api/events") {
      return sockets.handleUpgrade(request, socket, head, (ws) => {
        sockets.emit("connection", ws, request);
        attachEvents(ws, registry);
      });
    }
    rejectUpgrade(socket, 404, `no WebSocket at ${url.pathname}: use /api/vms/ID/console or /api/events`);
  });
  // A client that sends garbage gets a 400 from Node and is closed; nothing else to do.
  server.on("clientError", (_error, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(listen.port, listen.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const alive = new WeakSet<WebSocket>();
  // handleUpgrade's callbacks emit "connection" (noServer mode does not).
  sockets.on("connection", (ws) => {
    alive.add(ws);
    ws.on("pong", () => alive.add(ws));
  });
  const heartbeat = setInterval(() => {
    for (const ws of sockets.clients) {
      // terminate() fires "close", which detaches the viewer or the events listener.
      if (!alive.has(ws)) ws.terminate();
      else {
        alive.delete(ws);
        ws.ping();
      }
    }
  }, options.heartbeatMs ?? HEARTBEAT_MS);
  heartbeat.unref();
  const bound = server.address() as AddressInfo;
  const shownHost = listen.host === "0.0.0.0" || listen.host === "::" ? "127.0.0.1" : bound.family === "IPv6" ? `[${bound.address}]` : bound.address;
  const base = `http://${listen.host === "localhost" ? "localhost" : shownHost}:${bound.port}/`;
  return {
    url: access.token === undefined ? base : `${base}?token=${access.token}`,
    token: access.token,
    registry,
    openSockets: () => sockets.clients.size,
    close: () => {
      clearInterval(heartbeat);
      return closeAll(server, sockets, registry);
    },
  };
}

function requestUrl(request: IncomingMessage): URL {
  try {
    return new URL(request.url ?? "/", "http://console");
  } catch {
    return new URL("http://console/");
  }
}

function serveAsset(assets: Map<string, Asset>, request: IncomingMessage, response: ServerResponse, url: URL, access: AccessPolicy): void {
  if (!request.complete) response.setHeader("Connection", "close");
  if (request.method !== "GET" && request.method !== "HEAD") return sendError(response, 405, `${request.method} ${url.pathname} is not allowed (allowed: GET)`);
  const asset = assets.get(url.pathname);
  if (!asset) return sendError(response, 404, `no file ${url.pathname}`);
  const headers: Record<string, string | number> = {
    "Content-Type": asset.type,
    "Content-Length": asset.body.length,
    "Cache-Control": "no-cache",
    // The page loads only its own files and talks only to this server.
    "Content-Security-Policy": "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
  };
  if (access.tokenInQuery(url)) headers["Set-Cookie"] = access.cookie();
  response.writeHead(200, headers);
  response.end(request.method === "HEAD" ? undefined : asset.body);
}

function rejectUpgrade(socket: Duplex, status: number, message: string): void {
  const body = JSON.stringify({ error: message });
  const reason = { 401: "Unauthorized", 403: "Forbidden", 404: "Not Found" }[status] ?? "Bad Request";
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

function attachViewer(ws: WebSocket, entry: ConsoleVm, registry: VmRegistry): void {
  const viewer = {
    get bufferedAmount() {
      return ws.bufferedAmount;
    },
    send: (data: Buffer) => ws.send(data),
    close: (code: number, reason: string) => ws.close(code, reason),
  };
  const forget = () => {
    entry.hub.remove(viewer);
    registry.changed();
  };
  ws.on("message", (data: Buffer | ArrayBuffer | Buffer[]) => entry.hub.input(Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)));
  ws.on("close", forget);
  ws.on("error", () => ws.terminate());
  entry.hub.add(viewer);
  registry.changed();
}

function attachEvents(ws: WebSocket, registry: VmRegistry): void {
  const send = (message: unknown) => {
    if (ws.bufferedAmount > MAX_EVENTS_BACKLOG) return ws.terminate();
    ws.send(JSON.stringify(message));
  };
  const onChanged = () => send({ type: "vms", vms: registry.list().map((vm) => vm.summary()) });
  const onSample = (id: string, sample: unknown) => send({ type: "sample", id, sample });
  registry.on("changed", onChanged);
  registry.on("sample", onSample);
  ws.on("close", () => {
    registry.off("changed", onChanged);
    registry.off("sample", onSample);
  });
  ws.on("error", () => ws.terminate());
  // The page sends nothing here; anything it sends is ignored.
  const vms = registry.list();
  send({ type: "hello", vms: vms.map((vm) => vm.summary()), stats: Object.fromEntries(vms.map((vm) => [vm.id, vm.stats.samples])) });
}

async function closeAll(server: Server, sockets: WebSocketServer, registry: VmRegistry): Promise<void> {
  await registry.stopAll();
  for (const ws of sockets.clients) ws.terminate();
  sockets.close();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
