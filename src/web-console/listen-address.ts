/**
 * `--listen HOST:PORT` for `petasan console`, and whether that address is loopback (only this host can
 * connect) or not (anyone who can route to it can: then every request needs the console's token).
 */
import { isIP } from "node:net";

export interface ListenAddress {
  /** As given to net.Server.listen: an IPv4 or IPv6 address (no brackets) or "localhost". */
  host: string;
  port: number;
  /** Only this host can reach it: 127.0.0.0/8, ::1 or "localhost". */
  loopback: boolean;
}

export const DEFAULT_LISTEN = "127.0.0.1:8080";

/** A one-line message for a bad --listen. */
export class ListenAddressError extends Error {
  override readonly name = "ListenAddressError";
}

/** Parses "127.0.0.1:8080", "0.0.0.0:8080", "[::1]:8080", "localhost:8080" (port 0: any free port). */
export function parseListenAddress(text: string): ListenAddress {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  if (!match) throw new ListenAddressError(`--listen ${JSON.stringify(text)}: expected HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080`);
  const host = match[1] ?? match[2];
  const port = Number(match[3]);
  if (port > 65535) throw new ListenAddressError(`--listen ${text}: port ${port} is not in 0..65535`);
  if (match[1] !== undefined ? isIP(host) !== 6 : host !== "localhost" && isIP(host) !== 4) {
    throw new ListenAddressError(`--listen ${text}: ${host} is not an IP address (IPv6 goes in brackets) or "localhost"`);
  }
  return { host, port, loopback: isLoopback(host) };
}

/** 127.0.0.0/8, ::1 (and its IPv4-mapped form of 127/8), "localhost"; 0.0.0.0 and :: are every address, not loopback. */
export function isLoopback(host: string): boolean {
  if (host === "localhost" || host === "::1") return true;
  const v4 = host.startsWith("::ffff:") ? host.slice(7) : host;
  return isIP(v4) === 4 && v4.startsWith("127.");
}
