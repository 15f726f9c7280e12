/**
 * The MMDS HTTP/1.x server (Firecracker mmds/mod.rs convert_to_response over micro_http): GET reads the
 * data store, PUT /latest/api/token issues V2 session tokens; answers are plain text or JSON with
 * micro_http's headers. A request is its head only: MMDS requests carry no body, and one that announces
 * a body is refused (micro_http answers such a request "Invalid request.").
 */
import type { MmdsMetadata, OutputFormat } from "./metadata.js";
import { MMDS_UNSUPPORTED_VALUE_TYPE } from "./metadata.js";
import type { MmdsMetrics } from "./metrics.js";
import { invalidTtlMessage, MAX_TOKEN_TTL_SECONDS, MIN_TOKEN_TTL_SECONDS, type TokenAuthority } from "./token.js";

export const PATH_TO_TOKEN = "/latest/api/token";
const TOKEN_HEADERS = ["x-metadata-token", "x-aws-ec2-metadata-token"];
const TTL_HEADERS = ["x-metadata-token-ttl-seconds", "x-aws-ec2-metadata-token-ttl-seconds"];

// VmmMmdsError texts (mmds/mod.rs).
export const INVALID_TOKEN = "MMDS token not valid.";
export const INVALID_URI = "Invalid URI.";
export const METHOD_NOT_ALLOWED = "Not allowed HTTP method.";
export const NO_TOKEN_PROVIDED = "No MMDS token provided. Use `X-metadata-token` or `X-aws-ec2-metadata-token` header to specify the session token.";
export const NO_TTL_PROVIDED = "Token time to live value not found. Use `X-metadata-token-ttl-seconds` or `X-aws-ec2-metadata-token-ttl-seconds` header to specify the token's lifetime.";
export const INVALID_REQUEST = "Invalid request.";


export interface HttpRequest {
  method: string;
  /** The absolute path: "/a/b" from either "/a/b" or "http://host/a/b". */
  path: string;
  version: "HTTP/1.0" | "HTTP/1.1";
  /** Lower-cased names; the name as sent is kept for echoing it back. */
  headers: Map<string, { name: string; value: string }>;
}

export interface HttpResponse {
  status: number;
  contentType: "text/plain" | "application/json";
  body: string;
  /** Extra header lines ("Name: value"). */
  headers?: string[];
  /** Close the connection after this response (HTTP/1.0, Connection: close, or a request we could not read). */
  close?: boolean;
}

/** Parses one request head (everything up to and including the blank line), or returns the error response. */
export function parseRequestHead(head: string): HttpRequest | HttpResponse {
  const lines = head.split(/\r?\n/);
  const parts = lines[0].split(" ");
  if (parts.length !== 3) return plain(400, INVALID_REQUEST, true);
  const [method, target, version] = parts;
  if (version !== "HTTP/1.0" && version !== "HTTP/1.1") return plain(501, "Unsupported HTTP version.", true);
  if (!/^[A-Z]+$/.test(method)) return plain(501, "Unsupported HTTP method.", true);
  const path = target.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, "");
  const headers = new Map<string, { name: string; value: string }>();
  for (const line of lines.slice(1)) {
    if (line === "") continue;
    const colon = line.indexOf(":");
    if (colon <= 0) return plain(400, INVALID_REQUEST, true);
    const name = line.slice(0, colon).trim();
    headers.set(name.toLowerCase(), { name, value: line.slice(colon + 1).trim() });
  }
  const length = headers.get("content-length")?.value;
  if ((length !== undefined && length !== "0") || headers.has("transfer-encoding")) return plain(400, INVALID_REQUEST, true);
  return { method, path, version, headers };
}

export interface MmdsHttpContext {
  metadata: MmdsMetadata;
  tokens: TokenAuthority;
  metrics: MmdsMetrics;
}

/** Answers one parsed request as Firecracker's MMDS does. */
export function respond(ctx: MmdsHttpContext, req: HttpRequest): HttpResponse {
  const response = route(ctx, req);
  const connection = req.headers.get("connection")?.value.toLowerCase();
  if (connection === "close" || (req.version === "HTTP/1.0" && connection !== "keep-alive")) response.close = true;
  return response;
}

function route(ctx: MmdsHttpContext, req: HttpRequest): HttpResponse {
  if (req.path === "") return plain(400, INVALID_URI);
  switch (req.method) {
    case "GET":
      return get(ctx, req);
    case "PUT":
      return put(ctx, req);
    case "HEAD":
    case "POST":
    case "PATCH":
    case "DELETE":
    case "OPTIONS":
      return { ...plain(405, METHOD_NOT_ALLOWED), headers: ["Allow: GET, PUT"] };
    default:
      return plain(501, "Unsupported HTTP method.");
  }
}

function get(ctx: MmdsHttpContext, req: HttpRequest): HttpResponse {
  const token = findHeader(req, TOKEN_HEADERS);
  if (token === undefined) {
    ctx.metrics.rx_no_token++;
    if (ctx.metadata.version === "V2") return plain(401, NO_TOKEN_PROVIDED);
  } else if (!ctx.tokens.isValid(token.value)) {
    ctx.metrics.rx_invalid_token++;
    if (ctx.metadata.version === "V2") return plain(401, INVALID_TOKEN);
  }
  // micro_http: Accept: application/json asks for JSON, anything else (or nothing) for plain text.
  const json = req.headers.get("accept")?.value.toLowerCase().includes("application/json") ?? false;
  const format: OutputFormat = json ? "json" : "imds";
  const found = ctx.metadata.lookup(sanitize(req.path), format);
  if (!found.ok) {
    return found.error === "not-found" ? plain(404, `Resource not found: ${req.path}.`) : plain(501, MMDS_UNSUPPORTED_VALUE_TYPE);
  }
  const asJson = json && !ctx.metadata.imdsCompat;
  return { status: 200, contentType: asJson ? "application/json" : "text/plain", body: found.body };
}

function put(ctx: MmdsHttpContext, req: HttpRequest): HttpResponse {
  const forwarded = req.headers.get("x-forwarded-for");
  if (forwarded !== undefined) return plain(400, `Invalid header. Reason: Unsupported header name. Key: ${forwarded.name}`);
  if (sanitize(req.path) !== PATH_TO_TOKEN) return plain(404, `Resource not found: ${req.path}.`);
  const ttl = findHeader(req, TTL_HEADERS);
  if (ttl === undefined) return plain(400, NO_TTL_PROVIDED);
  // Firecracker parses a u32: digits only, then checks the range.
  if (!/^\d{1,10}$/.test(ttl.value) || Number(ttl.value) > 0xffff_ffff) {
    return plain(400, `Invalid header. Reason: Invalid value. Key:${ttl.name}; Value:${ttl.value}`);
  }
  const seconds = Number(ttl.value);
  if (seconds < MIN_TOKEN_TTL_SECONDS || seconds > MAX_TOKEN_TTL_SECONDS) return plain(400, invalidTtlMessage(seconds));
  return { status: 200, contentType: "text/plain", body: ctx.tokens.generate(seconds), headers: [`${ttl.name}: ${seconds}`] };
}

/** micro_http's response bytes: a status line without reason phrase, then Server, Connection, Content-Type, Content-Length. */
export function serializeResponse(version: string, res: HttpResponse): Uint8Array {
  const body = Buffer.from(res.body);
  const head = [
    `${version} ${res.status} `,
    "Server: petasan",
    `Connection: ${res.close ? "close" : "keep-alive"}`,
    ...(res.headers ?? []),
    `Content-Type: ${res.contentType}`,
    `Content-Length: ${body.length}`,
    "",
    "",
  ].join("\r\n");
  return Buffer.concat([Buffer.from(head), body]);
}

/** Collapses "//" runs, as Firecracker's sanitize_uri does, so the path is a strict JSON pointer. */
function sanitize(path: string): string {
  let out = path;
  while (out.includes("//")) out = out.replace(/\/\//g, "/");
  return out;
}

function findHeader(req: HttpRequest, names: readonly string[]): { name: string; value: string } | undefined {
  for (const n of names) {
    const h = req.headers.get(n);
    if (h !== undefined) return h;
  }
  return undefined;
}

function plain(status: number, body: string, close = false): HttpResponse {
  return { status, contentType: "text/plain", body, ...(close && { close }) };
}
