import { test } from "node:test";
import assert from "node:assert/strict";
import { buildTcpFrame, checksum, parseIpv4Tcp, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, type TcpSegment } from "./frames.js";
import { MmdsMetadata } from "./metadata.js";
import { newMmdsMetrics } from "./metrics.js";
import { MAX_CONNECTIONS, MMDS_MAC, MmdsNetworkStack } from "./network-stack.js";
import { RECEIVE_BUFFER_BYTES } from "./tcp-connection.js";
import { TokenAuthority } from "./token.js";

const GUEST_MAC = Uint8Array.of(0x52, 0x54, 0, 0x12, 0x34, 0x56);
const GUEST_IP = 0x0a000002; // 10.0.0.2: only ever a number in these frames, never an address contacted
const MMDS_IP = 0xa9fea9fe; // 169.254.169.254

function stack(data: unknown = { a: "x".repeat(5000), b: { c: "d" } }) {
  const metadata = new MmdsMetadata("V1");
  metadata.setDataText(JSON.stringify(data));
  let now = 0;
  const metrics = newMmdsMetrics();
  const s = new MmdsNetworkStack({ ipv4Address: MMDS_IP, http: { metadata, tokens: new TokenAuthority(() => now), metrics }, now: () => now, randomIss: () => 1000 });
  return { s, metrics, tick: (ms: number) => (now += ms) };
}

function guestSegment(fields: { port?: number; dstPort?: number; seq: number; ack?: number; flags: number; window?: number; mss?: number; payload?: string }): Uint8Array {
  return buildTcpFrame({
    srcMac: GUEST_MAC, dstMac: MMDS_MAC, srcIp: GUEST_IP, dstIp: MMDS_IP, srcPort: fields.port ?? 40000, dstPort: fields.dstPort ?? 80,
    seq: fields.seq, ack: fields.ack ?? 0, flags: fields.flags, window: fields.window ?? 65535, mss: fields.mss,
    payload: fields.payload === undefined ? undefined : Buffer.from(fields.payload),
  });
}

/** Every frame the stack has for the guest, parsed, with both checksums verified. */
function drain(s: MmdsNetworkStack): TcpSegment[] {
  const out: TcpSegment[] = [];
  for (let f = s.nextFrame(); f !== null; f = s.nextFrame()) {
    assert.deepEqual(f.subarray(0, 6), GUEST_MAC);
    assert.equal(checksum(f.subarray(14, 34), 0), 0, "IPv4 header checksum");
    const p = parseIpv4Tcp(f);
    assert.equal(p.kind, "tcp");
    const seg = (p as { segment: TcpSegment }).segment;
    const tcpLen = f.length - 34;
    const pseudo = (MMDS_IP >>> 16) + (MMDS_IP & 0xffff) + (GUEST_IP >>> 16) + (GUEST_IP & 0xffff) + 6 + tcpLen;
    assert.equal(checksum(f.subarray(34), pseudo), 0, "TCP checksum");
    out.push(seg);
  }
  return out;
}

function feed(s: MmdsNetworkStack, frame: Uint8Array): void {
  assert.ok(s.isMmdsFrame(frame.subarray(0, 42)));
  s.detour(frame);
}

/** SYN → SYN-ACK → ACK; returns the server's next sequence number. */
function connect(s: MmdsNetworkStack, opts: { port?: number; mss?: number; window?: number } = {}): number {
  feed(s, guestSegment({ ...opts, seq: 500, flags: TCP_SYN }));
  const [synAck] = drain(s);
  assert.equal(synAck.flags, TCP_SYN | TCP_ACK);
  assert.equal(synAck.ack, 501);
  assert.equal(synAck.mss, 1460);
  feed(s, guestSegment({ ...opts, seq: 501, ack: synAck.seq + 1, flags: TCP_ACK }));
  return synAck.seq + 1;
}

test("ARP requests for the MMDS address are answered with the MMDS MAC; others are not MMDS's", () => {
  const { s } = stack();
  const arp = new Uint8Array(42);
  arp.fill(0xff, 0, 6);
  arp.set(GUEST_MAC, 6);
  arp.set([0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1], 12);
  arp.set(GUEST_MAC, 22);
  arp.set([10, 0, 0, 2], 28);
  arp.set([169, 254, 169, 254], 38);
  assert.ok(s.isMmdsFrame(arp));
  s.detour(arp);
  const reply = s.nextFrame()!;
  assert.deepEqual([...reply.subarray(0, 6)], [...GUEST_MAC]);
  assert.deepEqual([...reply.subarray(20, 22)], [0, 2], "an ARP reply");
  assert.deepEqual([...reply.subarray(22, 28)], [...MMDS_MAC]);
  assert.deepEqual([...reply.subarray(28, 32)], [169, 254, 169, 254]);
  assert.deepEqual([...reply.subarray(38, 42)], [10, 0, 0, 2]);
  assert.equal(s.nextFrame(), null);
  const other = arp.slice();
  other.set([10, 0, 0, 1], 38);
  assert.equal(s.isMmdsFrame(other), false);
  const toTap = guestSegment({ seq: 1, flags: TCP_SYN });
  toTap.set([10, 0, 0, 1], 30);
  assert.equal(s.isMmdsFrame(toTap), false);
});

test("a GET is answered within the guest's MSS and window, then closed with FIN after the guest's FIN", () => {
  const { s, metrics } = stack();
  let next = connect(s, { mss: 1000, window: 1500 });
  const req = "GET /a HTTP/1.1\r\nAccept: application/json\r\n\r\n";
  const after = 501 + req.length;
  feed(s, guestSegment({ seq: 501, ack: next, flags: TCP_ACK | TCP_PSH, window: 1500, payload: req }));
  let segs = drain(s);
  // 1500 bytes of window: one full 1000-byte segment and 500 more, nothing beyond.
  assert.deepEqual(segs.map((x) => x.payload.length), [1000, 500]);
  assert.equal(segs[0].ack, after);
  let received = Buffer.concat(segs.map((x) => Buffer.from(x.payload)));
  for (let rounds = 0; rounds < 20 && segs.length > 0; rounds++) {
    next += segs.reduce((n, x) => n + x.payload.length, 0);
    feed(s, guestSegment({ seq: after, ack: next, flags: TCP_ACK, window: 1500 }));
    segs = drain(s);
    assert.ok(segs.every((x) => x.payload.length <= 1000));
    received = Buffer.concat([received, ...segs.map((x) => Buffer.from(x.payload))]);
  }
  const text = received.toString();
  assert.match(text, /^HTTP\/1\.1 200 \r\nServer: petasan\r\nConnection: keep-alive\r\nContent-Type: application\/json\r\nContent-Length: 5002\r\n\r\n"x{5000}"$/);
  feed(s, guestSegment({ seq: after, ack: next, flags: TCP_FIN | TCP_ACK }));
  const [fin] = drain(s);
  assert.equal(fin.flags, TCP_FIN | TCP_ACK);
  assert.equal(fin.ack, after + 1);
  feed(s, guestSegment({ seq: after + 1, ack: fin.seq + 1, flags: TCP_ACK }));
  drain(s);
  assert.equal(s.connectionCount, 0);
  assert.deepEqual([metrics.connections_created, metrics.connections_destroyed], [1, 1]);
});

test("Connection: close gets FIN after the response; out-of-order data gets a duplicate ACK", () => {
  const { s } = stack();
  const next = connect(s);
  feed(s, guestSegment({ seq: 600, ack: next, flags: TCP_ACK, payload: "junk" }));
  const [dup] = drain(s);
  assert.deepEqual([dup.flags, dup.ack, dup.payload.length], [TCP_ACK, 501, 0]);
  const req = "GET /b/c HTTP/1.1\r\nConnection: close\r\n\r\n";
  feed(s, guestSegment({ seq: 501, ack: next, flags: TCP_ACK, payload: req }));
  const [data] = drain(s);
  assert.match(Buffer.from(data.payload).toString(), /Connection: close\r\n.*\r\n\r\nd$/s);
  feed(s, guestSegment({ seq: 501 + req.length, ack: next + data.payload.length, flags: TCP_ACK }));
  const [fin] = drain(s);
  assert.equal(fin.flags, TCP_FIN | TCP_ACK);
});

test("RST for other ports, for segments without a connection, and for a request head past the buffer", () => {
  const { s } = stack();
  feed(s, guestSegment({ dstPort: 22, seq: 7, flags: TCP_SYN }));
  let [rst] = drain(s);
  assert.deepEqual([rst.flags, rst.ack, rst.srcPort], [TCP_RST | TCP_ACK, 8, 22]);
  feed(s, guestSegment({ seq: 7, ack: 99, flags: TCP_ACK }));
  [rst] = drain(s);
  assert.deepEqual([rst.flags, rst.seq], [TCP_RST, 99]);
  feed(s, guestSegment({ seq: 7, flags: TCP_RST }));
  assert.deepEqual(drain(s), []);

  const next = connect(s);
  let seq = 501;
  for (let sent = 0; sent < RECEIVE_BUFFER_BYTES; sent += 1000) {
    feed(s, guestSegment({ seq, ack: next, flags: TCP_ACK, payload: "x".repeat(1000) }));
    seq += 1000;
  }
  const out = drain(s);
  assert.equal(out.at(-1)!.flags & TCP_RST, TCP_RST);
  assert.equal(s.connectionCount, 0);
});

test("at most 30 connections; a new SYN evicts only a connection silent for 10 s", () => {
  const { s, tick } = stack();
  for (let i = 0; i < MAX_CONNECTIONS; i++) connect(s, { port: 1000 + i });
  feed(s, guestSegment({ port: 2000, seq: 1, flags: TCP_SYN }));
  assert.equal(drain(s)[0].flags, TCP_RST | TCP_ACK);
  tick(10_001);
  feed(s, guestSegment({ port: 2000, seq: 1, flags: TCP_SYN }));
  assert.equal(drain(s)[0].flags, TCP_SYN | TCP_ACK);
  assert.equal(s.connectionCount, MAX_CONNECTIONS);
});

test("three duplicate ACKs resend what the guest did not acknowledge", () => {
  const { s } = stack();
  const next = connect(s, { mss: 500 });
  const req = "GET /a HTTP/1.1\r\n\r\n";
  feed(s, guestSegment({ seq: 501, ack: next, flags: TCP_ACK, payload: req }));
  const first = drain(s);
  assert.ok(first.length >= 3);
  // The guest lost the first segment: it acknowledges nothing new, three times.
  for (let i = 0; i < 3; i++) feed(s, guestSegment({ seq: 501 + req.length, ack: next, flags: TCP_ACK }));
  const again = drain(s);
  assert.equal(again[0].seq, next, "resent from the first unacknowledged byte");
  assert.deepEqual(again[0].payload, first[0].payload);
});
