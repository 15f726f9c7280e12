/**
 * Who may use the console. On a loopback listener only programs on this host can connect; a listener on any
 * other address (0.0.0.0 and :: included) makes a random token at start, and then every HTTP request and
 * WebSocket upgrade must carry it, whatever address it comes from (a proxy on this host would otherwise
 * pass anyone through). The token travels as `Authorization: Bearer T`, as `?token=T` (the URL printed at
 * start), or as the cookie the console sets when a page is opened with `?token=T`, which the page's own
 * fetches and WebSockets then carry.
 *
 * Two browser attacks apply even on loopback, and are refused everywhere: a web page on another site making
 * the user's browser call the console (WebSockets and simple POSTs ignore CORS), refused by requiring an
 * `Origin` equal to the console's own when a browser sends one, and by accepting only JSON bodies (which a
 * cross-site page cannot send without a CORS preflight the console never grants); and DNS rebinding (an
 * attacker's name resolving to 127.0.0.1), refused on loopback listeners by accepting only loopback `Host` names.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { isLoopback } from "./listen-address.js";

export const TOKEN_COOKIE = "petasan_console_token";

/** Why a request is refused: the HTTP status and a one-line message. */
export interface Refusal {
  status: 401 | 403;
  message: string;
}

export class AccessPolicy {
  /** The token every request needs, or undefined on a loopback listener. */
  readonly token?: string;

  constructor(private readonly listener: { loopback: boolean; display: string }) {
    if (!listener.loopback) this.token = randomBytes(24).toString("base64url");
  }

  /** Undefined when `request` may proceed; else why not. `browserWrite`: a request that changes something, or a WebSocket. */
  check(request: IncomingMessage, url: URL, browserWrite: boolean): Refusal | undefined {
    if (this.token !== undefined && !this.carriesToken(request, url)) {
      return { status: 401, message: `this console listens on ${this.listener.display} and every request needs its token: open the URL petasan console printed at start (…/?token=…)` };
    }
    const host = request.headers.host ?? "";
    if (this.listener.loopback && !isLoopback(hostName(host))) {
      return { status: 403, message: `Host ${JSON.stringify(host)} is not a loopback name: this console answers only to localhost, 127.0.0.1 or [::1]` };
    }
    const origin = request.headers.origin;
    if (browserWrite && origin !== undefined && !sameOrigin(origin, host)) {
      return { status: 403, message: `requests from the page at ${origin} are not allowed: only the console's own page may call it` };
    }
    return undefined;
  }

  /** Whether `url` carries the token in its query (then the response sets the cookie). */
  tokenInQuery(url: URL): boolean {
    return this.token !== undefined && equal(url.searchParams.get("token") ?? "", this.token);
  }

  /** The Set-Cookie value that lets the page's own requests carry the token. */
  cookie(): string {
    return `${TOKEN_COOKIE}=${this.token}; HttpOnly; SameSite=Strict; Path=/`;
  }

  private carriesToken(request: IncomingMessage, url: URL): boolean {
    const token = this.token!;
    const bearer = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? "");
    if (bearer && equal(bearer[1], token)) return true;
    if (equal(url.searchParams.get("token") ?? "", token)) return true;
    return cookies(request.headers.cookie).some(([name, value]) => name === TOKEN_COOKIE && equal(value, token));
  }
}

/** Compares in constant time (for equal lengths), so the token cannot be guessed byte by byte from timings. */
function equal(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

function cookies(header: string | undefined): [string, string][] {
  if (!header) return [];
  return header.split(";").map((part) => {
    const eq = part.indexOf("=");
    return eq < 0 ? [part.trim(), ""] : [part.slice(0, eq).trim(), part.slice(eq + 1).trim()];
  });
}

/** "127.0.0.1:8080" → "127.0.0.1", "[::1]:8080" → "::1", "localhost" → "localhost". */
export function hostName(host: string): string {
  const bracketed = /^\[([^\]]*)\](?::\d+)?$/.exec(host);
  if (bracketed) return bracketed[1];
  return host.replace(/:\d+$/, "").toLowerCase();
}

function sameOrigin(origin: string, host: string): boolean {
  try {
    const url = new URL(origin);
    return (url.protocol === "http:" || url.protocol === "https:") && url.host === host.toLowerCase();
  } catch {
    return false;
  }
}
