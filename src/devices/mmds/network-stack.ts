/**
 * MMDS on one guest network interface (Firecracker mmds/ns.rs): the net device hands it every guest frame
 * that is an ARP request for the MMDS address or an IPv4 packet to it, and asks it for frames to give the
 * guest whenever the guest has receive buffers. Replies are made only then, so what waits here is bounded
 * by the connections (at most 30), their responses, one ARP reply and at most 100 resets.
 */
import { buildArpReply, buildTcpFrame, destinationIp, ETHERTYPE_ARP, ETHERTYPE_IPV4, ethertype, parseArpRequest, parseIpv4Tcp, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, type ArpRequest, type TcpOut, type TcpSegment } from "./frames.js";
import { parseRequestHead, respond, serializeResponse, type MmdsHttpContext } from "./http.js";
import { TcpConnection } from "./tcp-connection.js";

/** Firecracker's MMDS MAC address, DEFAULT_TCP_PORT and connection bounds (mmds/ns.rs). */
export const MMDS_MAC = Uint8Array.of(0x06, 0x01, 0x23, 0x45, 0x67, 0x01);
export const MMDS_TCP_PORT = 80;
export const MAX_CONNECTIONS = 30;
export const MAX_PENDING_RESETS = 100;
/** A connection silent this long may be evicted for a new one when all slots are taken (Firecracker: ~10 s). */
export const EVICTION_MS = 10_000;

export interface MmdsNetworkStackOptions {
  ipv4Address: number;
  http: MmdsHttpContext;
  now?: () => number;
  /** Initial send sequence numbers; random by default (RFC 6528 asks them to be unpredictable). */
  randomIss?: () => number;
}

export class MmdsNetworkStack {
  readonly ipv4Address: number;
  private readonly http: MmdsHttpContext;
  private readonly now: () => number;
  private readonly randomIss: () => number;
  private readonly connections = new Map<string, { conn: TcpConnection; ip: number; port: number; mac: Uint8Array }>();
  private pendingArp: ArpRequest | null = null;
  private readonly pendingResets: TcpOut[] = [];

  constructor(options: MmdsNetworkStackOptions) {
    this.ipv4Address = options.ipv4Address >>> 0;
    this.http = options.http;
    this.now = options.now ?? (() => performance.now());
    this.randomIss = options.randomIss ?? (() => crypto.getRandomValues(new Uint32Array(1))[0]);
  }

  /** True for an ARP request for the MMDS address or an IPv4 packet to it (looks only at the headers). */
  isMmdsFrame(frame: Uint8Array): boolean {
    const type = ethertype(frame);
    if (type === ETHERTYPE_ARP) return destinationIp(frame) === this.ipv4Address && parseArpRequest(frame) !== undefined;
    return type === ETHERTYPE_IPV4 && destinationIp(frame) === this.ipv4Address;
  }

  /** Takes one guest frame for which isMmdsFrame was true. */
  detour(frame: Uint8Array): void {
    const m = this.http.metrics;
    m.rx_accepted++;
    if (ethertype(frame) === ETHERTYPE_ARP) {
      // Like Firecracker, only the latest ARP request waits for its reply.
      this.pendingArp = parseArpRequest(frame) ?? null;
      return;
    }
    const parsed = parseIpv4Tcp(frame);
    if (parsed.kind === "malformed") {
      m.rx_accepted_err++;
      return;
    }
    if (parsed.kind === "other-protocol") {
      m.rx_accepted_unusual++;
      return;
    }
    m.rx_count++;
    this.receiveSegment(parsed.segment);
  }

  /** True when nextFrame would give a frame (something to send now). */
  hasFrames(): boolean {
    if (this.pendingArp !== null || this.pendingResets.length > 0) return true;
    for (const c of this.connections.values()) if (c.conn.resetPending || c.conn.done || c.conn.hasNext()) return true;
    return false;
  }

  /** The next frame for the guest (Ethernet, no virtio header), or null when nothing waits. */
  nextFrame(): Uint8Array | null {
    const frame = this.makeFrame();
    if (frame !== null) {
      this.http.metrics.tx_count++;
      this.http.metrics.tx_frames++;
      this.http.metrics.tx_bytes += frame.length;
    }
    return frame;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  private makeFrame(): Uint8Array | null {
    if (this.pendingArp !== null) {
      const to = this.pendingArp;
      this.pendingArp = null;
      return buildArpReply(MMDS_MAC, this.ipv4Address, to);
    }
    const rst = this.pendingResets.shift();
    if (rst !== undefined) return buildTcpFrame(rst);
    for (const [key, c] of this.connections) {
      if (c.conn.resetPending) {
        this.drop(key);
        return this.frameFor(c, c.conn.resetSegment());
      }
      const seg = c.conn.next();
      if (seg !== null) {
        // Round robin: the connection that just sent goes to the back.
        this.connections.delete(key);
        this.connections.set(key, c);
        return this.frameFor(c, seg);
      }
      if (c.conn.done) this.drop(key);
    }
    return null;
  }

  private frameFor(c: { ip: number; port: number; mac: Uint8Array }, seg: ReturnType<TcpConnection["resetSegment"]>): Uint8Array {
    return buildTcpFrame({ srcMac: MMDS_MAC, dstMac: c.mac, srcIp: this.ipv4Address, dstIp: c.ip, srcPort: MMDS_TCP_PORT, dstPort: c.port, ...seg });
  }

  private receiveSegment(s: TcpSegment): void {
    const m = this.http.metrics;
    const key = `${s.srcIp}:${s.srcPort}`;
    const existing = this.connections.get(key);
    if (s.dstPort === MMDS_TCP_PORT && existing !== undefined) {
      existing.mac = s.srcMac;
      if (!existing.conn.receive(s, this.now())) m.rx_accepted_unusual++;
      return;
    }
    const isSyn = (s.flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) === TCP_SYN;
    if (s.dstPort !== MMDS_TCP_PORT || !isSyn || !this.makeRoom()) {
      this.queueReset(s);
      return;
    }
    const conn = new TcpConnection(s, this.randomIss(), this.now(), (head) => this.serve(head));
    this.connections.set(key, { conn, ip: s.srcIp, port: s.srcPort, mac: s.srcMac });
    m.connections_created++;
  }

  private serve(head: string): { bytes: Uint8Array; close: boolean } {
    const req = parseRequestHead(head);
    const version = "path" in req ? req.version : "HTTP/1.1";
    const res = "path" in req ? respond(this.http, req) : req;
    return { bytes: serializeResponse(version, res), close: res.close ?? false };
  }

  /** A free connection slot, evicting the longest-silent connection if it has been silent long enough. */
  private makeRoom(): boolean {
    if (this.connections.size < MAX_CONNECTIONS) return true;
    let oldest: string | undefined;
    let oldestMs = Infinity;
    for (const [key, c] of this.connections) {
      if (c.conn.lastActivityMs < oldestMs) {
        oldestMs = c.conn.lastActivityMs;
        oldest = key;
      }
    }
    if (oldest === undefined || this.now() - oldestMs < EVICTION_MS) return false;
    this.drop(oldest);
    return true;
  }

  private drop(key: string): void {
    if (this.connections.delete(key)) this.http.metrics.connections_destroyed++;
  }

  /** RFC 9293 §3.10.7.1: the reset for a segment that has no connection; never one for a RST. */
  private queueReset(s: TcpSegment): void {
    if (s.flags & TCP_RST) return;
    if (this.pendingResets.length >= MAX_PENDING_RESETS) {
      this.http.metrics.tx_errors++;
      return;
    }
    const base = { srcMac: MMDS_MAC, dstMac: s.srcMac, srcIp: this.ipv4Address, dstIp: s.srcIp, srcPort: s.dstPort, dstPort: s.srcPort, window: 0 };
    if (s.flags & TCP_ACK) {
      this.pendingResets.push({ ...base, seq: s.ack, ack: 0, flags: TCP_RST });
    } else {
      const length = s.payload.length + (s.flags & TCP_SYN ? 1 : 0) + (s.flags & TCP_FIN ? 1 : 0);
      this.pendingResets.push({ ...base, seq: 0, ack: (s.seq + length) >>> 0, flags: TCP_RST | TCP_ACK });
    }
  }
}
