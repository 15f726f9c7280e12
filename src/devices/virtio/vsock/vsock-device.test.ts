import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { GuestMemory } from "../../../memory/guest-memory.js";
import { MmioTransport } from "../mmio-transport.js";
import { CountingInterrupt, FakeMmioDriver, FakeVirtqueue } from "../testing/fake-driver.js";
import type { HostEvents, HostIo } from "../device.js";
import { decodeHeader, encodeHeader, HOST_CID, Op, SHUTDOWN_RCV, SHUTDOWN_SEND, TYPE_STREAM, VSOCK_HEADER_SIZE, type VsockHeader } from "./packet.js";
import { UnixVsockHost, type StreamSocket, type VsockHostSide } from "./unix-socket.js";
import { VirtioVsock } from "./vsock-device.js";
import { CONNECTION_BUF_ALLOC } from "./connection.js";
import { LOG_BURST } from "../../log-rate-limit.js";

const GUEST_CID = 3;
const RX_BUFFER = 4096;
const dir = mkdtempSync(join(tmpdir(), "petasan-vsock-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Watched fds' handlers; `poke` delivers a "ready" event to each, as an edge-triggered poller may (spurious ones included). */
class ManualHostIo implements HostIo {
  readonly handlers = new Map<number, (e: HostEvents) => void>();
  watch(fd: number, onEvent: (e: HostEvents) => void): void {
    assert.ok(!this.handlers.has(fd), `fd ${fd} watched twice`);
    this.handlers.set(fd, onEvent);
  }
  unwatch(fd: number): void {
    this.handlers.delete(fd);
  }
  poke(transport: MmioTransport): void {
    for (const h of [...this.handlers.values()]) transport.hostEvent(() => h({ readable: true, writable: true, hangup: false }));
  }
}

/** The guest's side: a driver with rx/tx/event queues, that sends packets and reads what the device delivered. */
function guest(host: VsockHostSide) {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: 0x200000 }]);
  const irq = new CountingInterrupt();
  const io = new ManualHostIo();
  const device = new VirtioVsock({ guestCid: GUEST_CID, host });
  device.attachHost(io);
  const transport = new MmioTransport(device, { mem, interrupt: irq });
  const [rx, tx, ev] = [0x1000, 0x5000, 0x9000].map((base) => new FakeVirtqueue(mem, 64, base));
  assert.equal(new FakeMmioDriver(transport).initialize([rx, tx, ev]), 0xf);
  let nextRx = 0x20000;
  const rxBuffers = new Map<number, number>();
  const giveRx = (count: number) => {
    for (let i = 0; i < count; i++) {
      const addr = nextRx;
      nextRx += VSOCK_HEADER_SIZE + RX_BUFFER;
      rxBuffers.set(rx.addChain([{ addr, len: VSOCK_HEADER_SIZE + RX_BUFFER, writable: true }]), addr);
    }
    transport.notify(0);
  };
  let nextTx = 0x100000;
  const send = (h: Partial<VsockHeader> & { op: number }, payload = new Uint8Array(), via = transport) => {
    const bytes = new Uint8Array(VSOCK_HEADER_SIZE + payload.length);
    encodeHeader({ srcCid: GUEST_CID, dstCid: HOST_CID, srcPort: 1234, dstPort: 5000, len: payload.length, type: TYPE_STREAM, flags: 0, bufAlloc: 65536, fwdCnt: 0, ...h }, bytes);
    bytes.set(payload, VSOCK_HEADER_SIZE);
    const addr = nextTx;
    nextTx += bytes.length + 64;
    mem.write(addr, bytes);
    tx.addChain([{ addr, len: bytes.length }]);
    via.notify(1);
  };
  /** Packets the device delivered since the last call. */
  const received = () => rx.takeUsed().map(({ id, len }) => {
    const addr = rxBuffers.get(id)!;
    const bytes = mem.read(addr, len);
    return { ...decodeHeader(bytes), payload: Buffer.from(bytes.subarray(VSOCK_HEADER_SIZE)).toString("latin1") };
  });
  return { device, transport, io, send, received, giveRx, poke: () => io.poke(transport), irq, mem, ev };
}

async function until<T>(what: string, poll: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = poll();
    if (v !== undefined) return v;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function listen(path: string, onSocket: (s: Socket) => void): Promise<Server> {
  return new Promise((resolve) => {
    const server = createServer(onSocket);
    server.listen(path, () => resolve(server));
  });
}

test("guest-initiated: joined to the host listener at <uds_path>_<port>, both ways, closed with RST", async () => {
  const uds = join(dir, "g.sock");
  const host = UnixVsockHost.listen(uds);
  const g = guest(host);
  let hostSide!: Socket;
  let fromGuest = "";
  let hostEnded = false;
  const server = await listen(`${uds}_5000`, (s) => {
    hostSide = s;
    s.on("data", (d) => (fromGuest += d.toString()));
    s.on("end", () => (hostEnded = true));
  });
  try {
    g.giveRx(8);
    g.send({ op: Op.Request });
    const [response] = g.received();
    assert.equal(response.op, Op.Response);
    assert.deepEqual([response.srcCid, response.dstCid, response.srcPort, response.dstPort], [HOST_CID, GUEST_CID, 5000, 1234]);
    assert.equal(response.bufAlloc, CONNECTION_BUF_ALLOC);

    g.send({ op: Op.Rw }, new TextEncoder().encode("hello from the guest"));
    await until("the host to read", () => (fromGuest === "hello from the guest" ? true : undefined));

    await until("the host to accept", () => hostSide);
    hostSide.write("hello from the host");
    const data = await until("data for the guest", () => {
      g.poke();
      return g.received().find((p) => p.op === Op.Rw);
    });
    assert.equal(data.payload, "hello from the host");
    assert.equal(g.device.metrics.rxBytes, 19);

    g.send({ op: Op.Shutdown, flags: SHUTDOWN_RCV | SHUTDOWN_SEND });
    assert.equal(g.received().at(-1)?.op, Op.Rst, "Linux waits for this RST to finish closing");
    await until("the host to see the end", () => (hostEnded ? true : undefined));
    assert.equal(g.device.openConnections, 0);
  } finally {
    server.close();
    g.device.close();
  }
});

test("host-initiated: CONNECT <port>, the guest accepts, the host reads OK <port>, bytes flow", async () => {
  const uds = join(dir, "h.sock");
  const g = guest(UnixVsockHost.listen(uds));
  const client = createConnection(uds);
  let fromVmm = "";
  client.on("data", (d) => (fromVmm += d.toString()));
  try {
    await new Promise((r) => client.once("connect", r));
    // Bytes sent right behind the CONNECT line are the stream's first bytes.
    client.write("CONNECT 52\nearly");
    g.giveRx(8);
    const request = await until("a REQUEST for the guest", () => {
      g.poke();
      return g.received().find((p) => p.op === Op.Request);
    });
    assert.equal(request.dstPort, 52);
    assert.ok(request.srcPort >= 2 ** 30, `host port ${request.srcPort}`);

    g.send({ op: Op.Response, srcPort: 52, dstPort: request.srcPort });
    await until("OK on the host", () => (fromVmm === `OK ${request.srcPort}\n` ? true : undefined));
    g.poke();
    assert.equal(g.received().find((p) => p.op === Op.Rw)?.payload, "early");

    g.send({ op: Op.Rw, srcPort: 52, dstPort: request.srcPort }, new TextEncoder().encode("pong"));
    await until("the guest's bytes on the host", () => (fromVmm.endsWith("pong") ? true : undefined));

    // The host closes: the guest is told with SHUTDOWN, answers RST, and the connection is gone.
    client.end();
    const shutdown = await until("SHUTDOWN for the guest", () => {
      g.poke();
      return g.received().find((p) => p.op === Op.Shutdown);
    });
    assert.equal(shutdown.flags, SHUTDOWN_RCV | SHUTDOWN_SEND);
    g.send({ op: Op.Rst, srcPort: 52, dstPort: request.srcPort });
    assert.equal(g.device.openConnections, 0);
  } finally {
    client.destroy();
    g.device.close();
  }
});

test("refusals: no host listener, a packet for no connection, a bad CONNECT line, a foreign CID", async () => {
  const uds = join(dir, "r.sock");
  const g = guest(UnixVsockHost.listen(uds));
  try {
    g.giveRx(8);
    g.send({ op: Op.Request, dstPort: 9999 });
    assert.deepEqual(g.received().map((p) => [p.op, p.srcPort, p.dstPort]), [[Op.Rst, 9999, 1234]]);
    g.send({ op: Op.Rw, dstPort: 7 }, new Uint8Array(3));
    assert.equal(g.received()[0]?.op, Op.Rst);
    g.send({ op: Op.Request, srcCid: 99 });
    assert.equal(g.received()[0]?.op, Op.Rst, "a packet claiming another guest's CID");
    assert.equal(g.device.metrics.invalidPackets, 1);

    const client = createConnection(uds);
    let closed = false;
    client.on("close", () => (closed = true));
    client.on("error", () => {});
    client.write("HELLO 52\n");
    await until("the bad handshake to be dropped", () => {
      g.poke();
      return closed ? true : undefined;
    });
    assert.equal(g.device.metrics.connectionsRefused, 2);
    assert.equal(g.device.openConnections, 0);
  } finally {
    g.device.close();
  }
});

/** A host socket that takes at most `room` bytes until drained, for flow-control cases. */
class FakeStream implements StreamSocket {
  static nextFd = 1000;
  readonly fd = FakeStream.nextFd++;
  written: number[] = [];
  toRead: number[] = [];
  eof = false;
  closed = false;
  constructor(public room: number) {}
  read(buf: Uint8Array): number {
    if (this.toRead.length === 0) return this.eof ? 0 : -1;
    const n = Math.min(buf.length, this.toRead.length);
    buf.set(this.toRead.splice(0, n));
    return n;
  }
  write(buf: Uint8Array): number {
    const n = Math.min(buf.length, this.room);
    if (n === 0) return -1;
    this.room -= n;
    this.written.push(...buf.subarray(0, n));
    return n;
  }
  shutdownWrite(): void {}
  close(): void {
    this.closed = true;
  }
}

function fakeHost(stream: FakeStream): VsockHostSide {
  return { listenFd: 999, accept: () => null, connect: () => stream, close: () => {} };
}

test("credit: the device sends no more than the guest's buffer allows, and asks for credit once", () => {
  const stream = new FakeStream(1 << 20);
  const g = guest(fakeHost(stream));
  g.giveRx(16);
  g.send({ op: Op.Request, bufAlloc: 100 });
  assert.equal(g.received()[0].op, Op.Response);
  stream.toRead = Array(300).fill(0x61);
  g.poke();
  const first = g.received();
  assert.deepEqual(first.map((p) => [p.op, p.payload.length]), [[Op.Rw, 100], [Op.CreditRequest, 0]]);
  g.poke();
  assert.deepEqual(g.received(), [], "no second CREDIT_REQUEST while stalled");
  // The guest consumed 100 bytes: 100 more may go.
  g.send({ op: Op.CreditUpdate, bufAlloc: 100, fwdCnt: 100 });
  assert.deepEqual(g.received().map((p) => [p.op, p.payload.length]), [[Op.Rw, 100], [Op.CreditRequest, 0]]);
  g.device.close();
});

test("a guest that sends past the buffer it was given is reset; forwarded bytes are credited back", () => {
  const stream = new FakeStream(0);
  const g = guest(fakeHost(stream));
  g.giveRx(16);
  g.send({ op: Op.Request });
  g.received();
  const chunk = new Uint8Array(64 * 1024);
  for (let sent = 0; sent < CONNECTION_BUF_ALLOC; sent += chunk.length) g.send({ op: Op.Rw }, chunk);
  assert.deepEqual(g.received(), [], "within its credit: held for the host");
  g.send({ op: Op.Rw }, new Uint8Array(1));
  assert.deepEqual(g.received().map((p) => p.op), [Op.Rst]);
  assert.ok(stream.closed);

  // Within credit, a host that drains tells the guest with a CREDIT_UPDATE once half the buffer moved.
  const fast = new FakeStream(1 << 30);
  const h = guest(fakeHost(fast));
  h.giveRx(16);
  h.send({ op: Op.Request });
  h.received();
  for (let sent = 0; sent < CONNECTION_BUF_ALLOC / 2; sent += chunk.length) h.send({ op: Op.Rw }, chunk);
  const update = h.received().find((p) => p.op === Op.CreditUpdate);
  assert.equal(update?.fwdCnt, CONNECTION_BUF_ALLOC / 2);
  g.device.close();
  h.device.close();
});

test("config writes a guest makes as often as it likes log a bounded number of lines", () => {
  const lines: string[] = [];
  const device = new VirtioVsock({ guestCid: GUEST_CID, host: fakeHost(new FakeStream(0)), logger: (_level, msg) => lines.push(msg) });
  for (let i = 0; i < 10_000; i++) device.writeConfig(0);
  assert.ok(lines.length <= LOG_BURST, `${lines.length} lines`);
});

test("snapshot: connections end, TRANSPORT_RESET goes on the event queue, rx waits for the guest's ack; a restored device signals it again", async () => {
  const uds = join(dir, "s.sock");
  const g = guest(UnixVsockHost.listen(uds));
  let hostEnded = false;
  const server = await listen(`${uds}_5000`, (s) => {
    s.resume();
    s.on("end", () => (hostEnded = true));
  });
  const EVENT_BUFFER = 0x180000;
  let restored: VirtioVsock | undefined;
  try {
    g.mem.writeU32(EVENT_BUFFER, 0xffff_ffff);
    const evHead = g.ev.addChain([{ addr: EVENT_BUFFER, len: 4, writable: true }]);
    g.transport.notify(2);
    g.giveRx(8);
    g.send({ op: Op.Request });
    assert.equal(g.received()[0].op, Op.Response);
    assert.equal(g.device.openConnections, 1);
    const interrupts = g.irq.triggers;
    // Through JSON, as the state file holds it.
    const saved = JSON.parse(JSON.stringify({ device: g.device.saveState(), transport: g.transport.saveState() }));
    assert.deepEqual(saved.device, { guestCid: GUEST_CID, pendingEventAck: true, nextHostPort: 2 ** 30 });
    assert.equal(g.device.openConnections, 0, "connections are not saved");
    await until("the host to see its connection end", () => (hostEnded ? true : undefined));
    assert.deepEqual(g.ev.takeUsed(), [{ id: evHead, len: 4 }]);
    assert.equal(g.mem.readU32(EVENT_BUFFER), 0, "VIRTIO_VSOCK_EVENT_TRANSPORT_RESET");
    assert.ok(g.irq.triggers > interrupts);
    assert.equal(g.device.metrics.transportResets, 1);

    // A new device (a new process), its transport reactivated at the saved ring positions.
    restored = new VirtioVsock({ guestCid: GUEST_CID, host: UnixVsockHost.listen(join(dir, "s2.sock")) });
    restored.attachHost(new ManualHostIo());
    const irq = new CountingInterrupt();
    const transport = new MmioTransport(restored, { mem: g.mem, interrupt: irq });
    restored.restoreState(saved.device);
    transport.configChanged();
    transport.restoreState(saved.transport);
    assert.equal(irq.triggers, 1, "the event queue is signalled again");
    // Until the driver acknowledges (refills the event queue and kicks it), nothing goes to the rx queue.
    g.send({ op: Op.Request, srcPort: 1300 }, undefined, transport);
    assert.deepEqual(g.received(), []);
    g.ev.addChain([{ addr: EVENT_BUFFER, len: 4, writable: true }]);
    transport.notify(2);
    const [answer] = g.received();
    assert.deepEqual([answer.op, answer.dstPort], [Op.Rst, 1300], "no listener at s2.sock_5000: reset, delivered once acknowledged");

    const other = new VirtioVsock({ guestCid: 4, host: UnixVsockHost.listen(join(dir, "s3.sock")) });
    assert.throws(() => other.restoreState(saved.device), /the snapshot's guest CID is 3, this device's 4/);
    other.close();
  } finally {
    server.close();
    restored?.close();
    g.device.close();
  }
});

test("snapshot of a device the driver gave no event buffer: connections still end, the loss is counted, rx is not held", () => {
  const g = guest(UnixVsockHost.listen(join(dir, "n.sock")));
  try {
    const saved = g.device.saveState();
    assert.equal(saved.pendingEventAck, false);
    assert.equal(g.device.metrics.eventQueueFails, 1);
  } finally {
    g.device.close();
  }
});
