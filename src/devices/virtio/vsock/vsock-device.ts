/**
 * virtio-vsock (virtio 1.2 §5.10) with Firecracker's host side (docs/vsock.md): guest AF_VSOCK streams are carried
 * to and from host AF_UNIX sockets. Host-initiated: a host program connects to `uds_path` and writes
 * "CONNECT <port>\n"; once the guest accepts, it reads "OK <host port>\n" and the stream is joined. Guest-initiated:
 * a guest connection to host port P is joined to the host listener at `<uds_path>_P`, or reset if there is none.
 *
 * Queues: 0 rx (device → guest), 1 tx (guest → device), 2 event (only for VIRTIO_VSOCK_EVENT_TRANSPORT_RESET, sent when
 * a snapshot is taken). Work per event is bounded: a kick serves at most one queue's worth of chains, and what a
 * connection owes the guest is a handful of flags plus data it reads only when the guest has buffers and credit.
 *
 * Snapshots (Firecracker's vsock persist.rs and prepare_save): connections are not saved. Taking a snapshot ends every
 * host connection and posts TRANSPORT_RESET on the event queue (into guest RAM, so the snapshot holds it) with an
 * interrupt, which the paused guest takes when it resumes; a restored device signals the event queue again. The guest
 * drops its connections, keeps its listening sockets and re-reads its CID (virtio 1.2 §5.10.6.7). Until the driver acknowledges (refills the event queue, which
 * kicks it), nothing is delivered on the rx queue, as in Firecracker (pending_event_ack).
 */
import type { GuestMemory } from "../../../memory/guest-memory.js";
import {
  COMMON_FEATURES, DEFAULT_QUEUE_SIZE, DEVICE_ID_VSOCK, readConfigBytes, silentLogger,
  type ActivateContext, type HostEvents, type HostIo, type Logger, type VirtioDevice,
} from "../device.js";
import { ChainBuffers, readSegments, subSegments, writeSegments } from "../queue/chain-buffers.js";
import type { DescriptorChain } from "../queue/descriptor-chain.js";
import type { Queue } from "../queue/queue.js";
import { VirtqError } from "../queue/virtq-error.js";
import { VsockConnection } from "./connection.js";
import { LogRateLimiter } from "../../log-rate-limit.js";
import {
  decodeHeader, encodeHeader, HOST_CID, Op, SHUTDOWN_RCV, SHUTDOWN_SEND, TYPE_STREAM, VSOCK_HEADER_SIZE, type VsockHeader,
} from "./packet.js";
import type { StreamSocket, VsockHostSide } from "./unix-socket.js";
import { DeviceStateError, StateReader } from "../../saved-state.js";

const RX = 0;
const TX = 1;
const EVENT = 2;
/** struct virtio_vsock_event's id (virtio 1.2 §5.10.6.7): the only event there is. */
export const VIRTIO_VSOCK_EVENT_TRANSPORT_RESET = 0;
/** Open connections per device, handshakes included (Firecracker's defs::MAX_CONNECTIONS). */
export const MAX_CONNECTIONS = 1023;
/** Host connections still sending their CONNECT line; the rest wait in the listener's backlog. */
const MAX_HANDSHAKES = 64;
/** "CONNECT 4294967295\n" is 19 bytes: a longer line is not a CONNECT line. */
const CONNECT_LINE_MAX = 32;
/** RSTs owed for packets that name no connection; past this the guest's own timeout closes its socket. */
const MAX_PENDING_RESETS = 256;
/** The largest payload per packet, as Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE. */
export const MAX_PACKET_PAYLOAD = 64 * 1024;
/** Host ports for host-initiated connections, as Firecracker allocates them: from 2^30 up, wrapping. */
const HOST_PORT_FIRST = 2 ** 30;
const U32_MAX = 0xffff_ffff;

export interface VsockMetrics {
  connectionsOpened: number;
  connectionsClosed: number;
  /** Host connections or guest requests turned away (no listener, too many connections, a bad CONNECT line). */
  connectionsRefused: number;
  /** Payload bytes and packets delivered to the guest / taken from it. */
  rxBytes: number;
  rxPackets: number;
  txBytes: number;
  txPackets: number;
  resetsSent: number;
  /** TRANSPORT_RESET events posted (one per snapshot of an active device), and those lost for want of an event buffer. */
  transportResets: number;
  eventQueueFails: number;
  /** Malformed chains or packets (completed empty or answered with RST). */
  invalidPackets: number;
  /** RSTs not sent because too many were already owed. */
  resetsDropped: number;
}

export interface VsockDeviceOptions {
  guestCid: number;
  host: VsockHostSide;
  logger?: Logger;
  name?: string;
}

interface Handshake {
  socket: StreamSocket;
  line: Uint8Array;
  used: number;
}

export class VirtioVsock implements VirtioDevice {
  readonly deviceType = DEVICE_ID_VSOCK;
  /** No device-specific features: stream sockets only (no VIRTIO_VSOCK_F_SEQPACKET, virtio 1.2 §5.10.3). */
  readonly features = COMMON_FEATURES;
  readonly queueMaxSizes = [DEFAULT_QUEUE_SIZE, DEFAULT_QUEUE_SIZE, DEFAULT_QUEUE_SIZE];
  readonly metrics: VsockMetrics = {
    connectionsOpened: 0, connectionsClosed: 0, connectionsRefused: 0, rxBytes: 0, rxPackets: 0, txBytes: 0, txPackets: 0,
    resetsSent: 0, transportResets: 0, eventQueueFails: 0, invalidPackets: 0, resetsDropped: 0,
  };
  readonly guestCid: number;
  private readonly host: VsockHostSide;
  private readonly log: Logger;
  /** A guest can write the config space as often as it likes: the line it triggers is rate limited. */
  private readonly configWriteLog = new LogRateLimiter();
  private readonly name: string;
  /** le64 guest_cid (virtio 1.2 §5.10.4). */
  private readonly config = new Uint8Array(8);
  private io?: HostIo;
  private active: { mem: GuestMemory; rx: Queue; tx: Queue; ev: Queue; interrupt: () => void } | null = null;
  /** A TRANSPORT_RESET is on the event queue, not yet acknowledged: rx delivery waits (Firecracker's pending_event_ack). */
  private pendingEventAck = false;
  /** By `${localPort}:${peerPort}` and by host fd. */
  private readonly connections = new Map<string, VsockConnection>();
  private readonly byFd = new Map<number, VsockConnection>();
  private readonly handshakes = new Map<number, Handshake>();
  /** Connections that may owe the guest a packet, in the order they will be served (round robin). */
  private readonly wantRx = new Set<VsockConnection>();
  private readonly resets: { localPort: number; peerPort: number }[] = [];
  private nextHostPort = HOST_PORT_FIRST;
  /** One packet on its way to the guest: header, then payload read straight from the host socket. */
  private readonly packet = new Uint8Array(VSOCK_HEADER_SIZE + MAX_PACKET_PAYLOAD);

  constructor(options: VsockDeviceOptions) {
    if (!Number.isInteger(options.guestCid) || options.guestCid < 3 || options.guestCid > U32_MAX) {
      throw new RangeError(`vsock guest CID ${options.guestCid} must be 3 to ${U32_MAX} (0-2 are reserved)`);
    }
    this.guestCid = options.guestCid;
    this.host = options.host;
    this.log = options.logger ?? silentLogger;
    this.name = options.name ?? "virtio-vsock";
    new DataView(this.config.buffer).setUint32(0, this.guestCid, true);
  }

  get openConnections(): number {
    return this.connections.size + this.handshakes.size;
  }

  readConfig(offset: number, data: Uint8Array): void {
    readConfigBytes(this.config, offset, data);
  }

  /** The config space is read-only (virtio 1.2 §5.10.4). */
  writeConfig(offset: number): void {
    this.configWriteLog.log(this.log, "warn", () => `${this.name}: ignored config write at ${offset}`);
  }

  attachHost(io: HostIo): void {
    this.io = io;
    io.watch(this.host.listenFd, () => this.acceptHostConnections());
  }

  activate(ctx: ActivateContext): void {
    if (ctx.queues.length !== 3) throw new Error(`${this.name}: expected 3 queues, got ${ctx.queues.length}`);
    if (!this.io) throw new Error(`${this.name}: no host poller attached`);
    this.active = { mem: ctx.mem, rx: ctx.queues[RX], tx: ctx.queues[TX], ev: ctx.queues[EVENT], interrupt: ctx.interrupt };
    // Resumed from a snapshot (restoreState) with the reset event unacknowledged: its used entry is in guest RAM
    // already, so signal it again, and serve what the driver queued for tx before the snapshot (Firecracker's kick).
    if (this.pendingEventAck) {
      ctx.interrupt();
      this.serveTx();
    }
    // Host connections that arrived before the driver was ready wait in the listener's backlog.
    this.acceptHostConnections();
  }

  processQueue(index: number): void {
    if (!this.active) return;
    if (index === TX) this.serveTx();
    // The driver refilled the event queue after handling TRANSPORT_RESET (Linux's virtio_vsock_event_done): its
    // acknowledgment, so rx delivery resumes.
    if (index === EVENT) this.pendingEventAck = false;
    // RX: new buffers, so what waited for them can go.
    this.pumpRx();
  }

  /**
   * For a snapshot: ends every connection (they are not saved) and posts TRANSPORT_RESET so the guest drops its
   * side too, then returns what a restored device needs. The guest CID stays that of the VM's configuration.
   */
  saveState(): { guestCid: number; pendingEventAck: boolean; nextHostPort: number } {
    if (this.active) {
      this.dropAllConnections();
      this.sendTransportReset();
    }
    return { guestCid: this.guestCid, pendingEventAck: this.pendingEventAck, nextHostPort: this.nextHostPort };
  }

  restoreState(saved: unknown): void {
    const r = new StateReader(saved, this.name);
    const guestCid = r.int("guestCid", 3, U32_MAX);
    if (guestCid !== this.guestCid) throw new DeviceStateError(`${this.name}: the snapshot's guest CID is ${guestCid}, this device's ${this.guestCid}`);
    this.pendingEventAck = r.bool("pendingEventAck");
    this.nextHostPort = r.int("nextHostPort", HOST_PORT_FIRST, U32_MAX);
  }

  /**
   * Puts VIRTIO_VSOCK_EVENT_TRANSPORT_RESET in the driver's next event buffer and signals it (Firecracker's
   * send_transport_reset_event); without a buffer the event is lost, logged and counted, as there.
   */
  private sendTransportReset(): void {
    const { mem, ev, interrupt } = this.active!;
    const chain = ev.pop();
    if (!chain) {
      this.metrics.eventQueueFails++;
      this.log("warn", `${this.name}: no event buffer for TRANSPORT_RESET: the guest keeps its connections, which the host has closed`);
      return;
    }
    let len = 0;
    try {
      const writable = ChainBuffers.of(chain).writable;
      const id = new Uint8Array(4);
      new DataView(id.buffer).setUint32(0, VIRTIO_VSOCK_EVENT_TRANSPORT_RESET, true);
      if (writable.reduce((n, s) => n + s.len, 0) >= id.length) {
        writeSegments(mem, writable, id);
        len = id.length;
      }
    } catch (e) {
      if (e instanceof VirtqError && e.ringBroken) throw e;
    }
    ev.addUsed(chain.head, len);
    if (len === 0) {
      this.metrics.invalidPackets++;
      return;
    }
    // Popped on its own, the queue has not asked the driver to kick when it refills: an empty pop() does (avail_event,
    // with EVENT_IDX), so the refill, the acknowledgment, reaches processQueue.
    if (ev.pop()) ev.undoPop();
    this.pendingEventAck = true;
    this.metrics.transportResets++;
    interrupt();
  }

  private dropAllConnections(): void {
    for (const c of [...this.connections.values()]) this.closeConnection(c);
    for (const fd of [...this.handshakes.keys()]) this.dropHandshake(fd);
    this.resets.length = 0;
    this.wantRx.clear();
  }

  /** The driver reset the device: every connection ends (the guest's sockets are gone with its driver state). */
  reset(): void {
    this.dropAllConnections();
    this.pendingEventAck = false;
    this.active = null;
  }

  /** Releases every host socket and the listener (the VM is going away). */
  close(): void {
    this.reset();
    if (this.io) this.io.unwatch(this.host.listenFd);
    this.host.close();
  }

  // ---- host side ----

  private acceptHostConnections(): void {
    if (!this.active || !this.io) return;
    while (this.handshakes.size < MAX_HANDSHAKES) {
      const socket = this.host.accept();
      if (!socket) return;
      if (this.openConnections >= MAX_CONNECTIONS) {
        socket.close();
        this.metrics.connectionsRefused++;
        continue;
      }
      this.handshakes.set(socket.fd, { socket, line: new Uint8Array(CONNECT_LINE_MAX), used: 0 });
      this.io.watch(socket.fd, (events) => this.onSocketEvent(socket.fd, events));
      this.readConnectLine(socket.fd);
    }
  }

  private onSocketEvent(fd: number, events: HostEvents): void {
    if (this.handshakes.has(fd)) return this.readConnectLine(fd);
    const c = this.byFd.get(fd);
    if (!c) return;
    if (events.writable) {
      try {
        c.flushToHost();
      } catch {
        return this.resetConnection(c);
      }
      if (c.owesCreditUpdate) this.wantRx.add(c);
    }
    if (events.readable || events.hangup) {
      // The host gave up before the guest answered its CONNECT: nothing to join any more.
      if (c.state === "requesting" && events.hangup) return this.resetConnection(c);
      c.hostReadable = true;
      if (c.hasDataForGuest()) this.wantRx.add(c);
    }
    this.pumpRx();
  }

  /** Reads a host connection's "CONNECT <port>\n" (Firecracker's host-initiated handshake). */
  private readConnectLine(fd: number): void {
    const h = this.handshakes.get(fd)!;
    let n: number;
    try {
      n = h.socket.read(h.line.subarray(h.used));
    } catch {
      n = 0;
    }
    if (n < 0) return;
    if (n === 0) return this.refuseHandshake(fd);
    h.used += n;
    const end = h.line.subarray(0, h.used).indexOf(0x0a);
    if (end < 0) {
      if (h.used === CONNECT_LINE_MAX) this.refuseHandshake(fd);
      return;
    }
    const match = /^CONNECT (\d{1,10})$/.exec(Buffer.from(h.line.subarray(0, end)).toString("latin1"));
    const port = match ? Number(match[1]) : -1;
    if (port < 0 || port > U32_MAX) return this.refuseHandshake(fd);

    this.handshakes.delete(fd);
    const c = new VsockConnection(this.allocateHostPort(), port, h.socket, "requesting");
    c.owesRequest = true;
    // Bytes the host sent right after its CONNECT line are the stream's first bytes.
    if (end + 1 < h.used) c.leftover = h.line.slice(end + 1, h.used);
    // Its socket stays watched: onSocketEvent finds it among the connections from now on.
    this.addConnection(c, false);
    this.pumpRx();
    this.acceptHostConnections();
  }

  private refuseHandshake(fd: number): void {
    this.metrics.connectionsRefused++;
    this.dropHandshake(fd);
    this.acceptHostConnections();
  }

  private dropHandshake(fd: number): void {
    const h = this.handshakes.get(fd);
    if (!h) return;
    this.handshakes.delete(fd);
    this.io!.unwatch(fd);
    h.socket.close();
  }

  private allocateHostPort(): number {
    for (;;) {
      const port = this.nextHostPort;
      this.nextHostPort = port === U32_MAX ? HOST_PORT_FIRST : port + 1;
      let taken = false;
      for (const c of this.connections.values()) if (c.localPort === port) taken = true;
      if (!taken) return port;
    }
  }

  private addConnection(c: VsockConnection, watch = true): void {
    this.connections.set(`${c.localPort}:${c.peerPort}`, c);
    this.byFd.set(c.socket.fd, c);
    if (watch) this.io!.watch(c.socket.fd, (events) => this.onSocketEvent(c.socket.fd, events));
    this.wantRx.add(c);
    this.metrics.connectionsOpened++;
  }

  private closeConnection(c: VsockConnection): void {
    this.connections.delete(`${c.localPort}:${c.peerPort}`);
    this.byFd.delete(c.socket.fd);
    this.wantRx.delete(c);
    this.io!.unwatch(c.socket.fd);
    c.socket.close();
    this.metrics.connectionsClosed++;
  }

  /** Ends `c` and tells the guest with RST. */
  private resetConnection(c: VsockConnection): void {
    this.closeConnection(c);
    this.queueReset(c.localPort, c.peerPort);
  }

  private queueReset(localPort: number, peerPort: number): void {
    if (this.resets.length >= MAX_PENDING_RESETS) {
      this.metrics.resetsDropped++;
      return;
    }
    this.resets.push({ localPort, peerPort });
  }

  // ---- guest → host (tx queue) ----

  private serveTx(): void {
    const { tx, interrupt } = this.active!;
    // At most one queue's worth per kick: a guest refilling the ring as fast as it is served cannot hold the thread.
    for (let i = 0; i < tx.size; i++) {
      const chain = tx.pop();
      if (!chain) break;
      this.takePacket(chain);
      tx.addUsed(chain.head, 0);
    }
    if (tx.needsNotification()) interrupt();
  }

  private takePacket(chain: DescriptorChain): void {
    const { mem } = this.active!;
    let readable;
    try {
      readable = ChainBuffers.of(chain).readable;
    } catch (e) {
      if (e instanceof VirtqError && e.ringBroken) throw e;
      this.metrics.invalidPackets++;
      return;
    }
    const total = readable.reduce((n, s) => n + s.len, 0);
    if (total < VSOCK_HEADER_SIZE) {
      this.metrics.invalidPackets++;
      return;
    }
    const hdr = decodeHeader(readSegments(mem, subSegments(readable, 0, VSOCK_HEADER_SIZE)));
    this.metrics.txPackets++;
    const fromGuest = hdr.srcCid === this.guestCid && hdr.dstCid === HOST_CID && hdr.type === TYPE_STREAM;
    if (!fromGuest || hdr.len > MAX_PACKET_PAYLOAD || hdr.len > total - VSOCK_HEADER_SIZE) {
      this.metrics.invalidPackets++;
      if (hdr.op !== Op.Rst) this.queueReset(hdr.dstPort, hdr.srcPort);
      return;
    }
    const c = this.connections.get(`${hdr.dstPort}:${hdr.srcPort}`);
    if (c && c.updatePeerCredit(hdr.bufAlloc, hdr.fwdCnt) && c.hasDataForGuest()) this.wantRx.add(c);

    switch (hdr.op) {
      case Op.Request:
        if (c) return this.resetConnection(c);
        return this.connectToHost(hdr);
      case Op.Rst:
        if (c) this.closeConnection(c);
        return;
      case Op.Response:
        if (c?.state === "requesting") return this.establish(c);
        break;
      case Op.Rw:
        if (c?.state === "established") {
          const payload = readSegments(mem, subSegments(readable, VSOCK_HEADER_SIZE, hdr.len));
          this.metrics.txBytes += payload.length;
          return this.toHost(c, () => c.sendToHost(payload));
        }
        break;
      case Op.Shutdown:
        if (c) return this.guestShutdown(c, hdr.flags);
        break;
      case Op.CreditUpdate:
        if (c) return;
        break;
      case Op.CreditRequest:
        if (c) {
          c.owesCreditUpdate = true;
          this.wantRx.add(c);
          return;
        }
        break;
    }
    // A packet for no connection (or out of place for its state): reset, as virtio 1.2 §5.10.6.4 has it.
    if (c) this.resetConnection(c);
    else this.queueReset(hdr.dstPort, hdr.srcPort);
  }

  /** Runs a write to the host; a socket error or a guest over its credit resets the connection. */
  private toHost(c: VsockConnection, write: () => boolean): void {
    let ok;
    try {
      ok = write();
    } catch {
      ok = false;
    }
    if (!ok) return this.resetConnection(c);
    if (c.owesCreditUpdate) this.wantRx.add(c);
  }

  private connectToHost(hdr: VsockHeader): void {
    let socket;
    try {
      if (this.openConnections >= MAX_CONNECTIONS) throw new Error("too many connections");
      socket = this.host.connect(hdr.dstPort);
    } catch {
      this.metrics.connectionsRefused++;
      return this.queueReset(hdr.dstPort, hdr.srcPort);
    }
    const c = new VsockConnection(hdr.dstPort, hdr.srcPort, socket, "established");
    c.updatePeerCredit(hdr.bufAlloc, hdr.fwdCnt);
    c.owesResponse = true;
    this.addConnection(c);
  }

  /** The guest accepted a host-initiated connection: the host learns its port, and bytes flow. */
  private establish(c: VsockConnection): void {
    c.state = "established";
    const ok = new TextEncoder().encode(`OK ${c.localPort}\n`);
    this.toHost(c, () => c.socket.write(ok) === ok.length);
    if (c.hasDataForGuest()) this.wantRx.add(c);
  }

  private guestShutdown(c: VsockConnection, flags: number): void {
    c.guestShutdown |= flags & (SHUTDOWN_RCV | SHUTDOWN_SEND);
    if (c.guestShutdown === (SHUTDOWN_RCV | SHUTDOWN_SEND)) {
      // Both directions done: Linux waits for our RST to finish closing (virtio_transport_close).
      try {
        c.flushToHost();
      } catch {
        // The host peer is gone; nothing more to deliver.
      }
      return this.resetConnection(c);
    }
    this.toHost(c, () => (c.flushToHost(), true));
  }

  // ---- host → guest (rx queue) ----

  /** Fills guest RX buffers with what is owed: RSTs, then connections' control packets and data, round robin. */
  private pumpRx(): void {
    if (!this.active || this.pendingEventAck) return;
    const { rx, interrupt } = this.active;
    let used = 0;
    for (let i = 0; i < rx.size && (this.resets.length > 0 || this.wantRx.size > 0); i++) {
      const chain = rx.pop();
      if (!chain) break;
      const len = this.fillRxBuffer(chain);
      if (len < 0) {
        rx.undoPop();
        break;
      }
      rx.addUsed(chain.head, len);
      used++;
    }
    if (used > 0 && rx.needsNotification()) interrupt();
  }

  /** Writes one packet into `chain`; returns its length, or -1 when nothing was owed after all. */
  private fillRxBuffer(chain: DescriptorChain): number {
    const { mem } = this.active!;
    let writable;
    try {
      writable = ChainBuffers.of(chain).writable;
    } catch (e) {
      if (e instanceof VirtqError && e.ringBroken) throw e;
      this.metrics.invalidPackets++;
      return 0;
    }
    const room = writable.reduce((n, s) => n + s.len, 0) - VSOCK_HEADER_SIZE;
    if (room < 0) {
      this.metrics.invalidPackets++;
      return 0;
    }
    const length = this.nextPacket(Math.min(room, MAX_PACKET_PAYLOAD));
    if (length < 0) return -1;
    writeSegments(mem, writable, this.packet.subarray(0, length));
    this.metrics.rxPackets++;
    return length;
  }

  /** Builds the next owed packet in `this.packet` with at most `room` payload bytes; returns its length or -1. */
  private nextPacket(room: number): number {
    const reset = this.resets.shift();
    if (reset) {
      this.metrics.resetsSent++;
      return this.header(reset.localPort, reset.peerPort, Op.Rst, 0, 0, { bufAlloc: 0, fwdCnt: 0 });
    }
    for (const c of this.wantRx) {
      const length = this.packetFor(c, room);
      this.wantRx.delete(c);
      // Still owing something: to the back of the line, so every connection gets its turn.
      if (this.connections.has(`${c.localPort}:${c.peerPort}`) && c.owesGuest()) this.wantRx.add(c);
      if (length >= 0) return length;
    }
    return -1;
  }

  private packetFor(c: VsockConnection, room: number): number {
    const send = (op: number, flags = 0, len = 0) => this.header(c.localPort, c.peerPort, op, flags, len, c.creditFields());
    if (c.owesRequest) {
      c.owesRequest = false;
      return send(Op.Request);
    }
    if (c.owesResponse) {
      c.owesResponse = false;
      return send(Op.Response);
    }
    if (c.hasDataForGuest() && room > 0) {
      const credit = c.peerCredit();
      if (credit === 0) {
        if (!c.creditRequested) {
          c.creditRequested = true;
          return send(Op.CreditRequest);
        }
      } else {
        const n = this.readForGuest(c, Math.min(room, credit));
        if (n > 0) {
          c.txCnt = (c.txCnt + n) >>> 0;
          this.metrics.rxBytes += n;
          return send(Op.Rw, 0, n);
        }
        if (n === 0) {
          // End of the host's stream: the guest reads EOF, then closes with RST.
          c.hostEof = true;
          return send(Op.Shutdown, SHUTDOWN_RCV | SHUTDOWN_SEND);
        }
      }
    }
    if (c.owesCreditUpdate) return send(Op.CreditUpdate);
    return -1;
  }

  /** Moves up to `max` host bytes into the packet's payload: >0 bytes, 0 at end of stream, -1 when none are there now. */
  private readForGuest(c: VsockConnection, max: number): number {
    const payload = this.packet.subarray(VSOCK_HEADER_SIZE, VSOCK_HEADER_SIZE + max);
    if (c.leftover) {
      const n = Math.min(max, c.leftover.length);
      payload.set(c.leftover.subarray(0, n));
      c.leftover = n === c.leftover.length ? null : c.leftover.subarray(n);
      return n;
    }
    let n;
    try {
      n = c.socket.read(payload);
    } catch {
      n = 0;
    }
    if (n < 0) c.hostReadable = false;
    return n;
  }

  private header(localPort: number, peerPort: number, op: number, flags: number, len: number, credit: { bufAlloc: number; fwdCnt: number }): number {
    encodeHeader({
      srcCid: HOST_CID, dstCid: this.guestCid, srcPort: localPort, dstPort: peerPort, len, type: TYPE_STREAM, op, flags, ...credit,
    }, this.packet);
    return VSOCK_HEADER_SIZE + len;
  }
}
