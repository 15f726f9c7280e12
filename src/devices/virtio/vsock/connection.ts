/**
 * One vsock stream between a guest port and a host unix socket: its state, the packets it owes the guest, and
 * credit-based flow control (virtio 1.2 §5.10.6.3): a sender may have at most the receiver's `buf_alloc` bytes in
 * flight, i.e. sent minus what the receiver has forwarded (`fwd_cnt`), and every packet header updates both.
 */
import type { StreamSocket } from "./unix-socket.js";
import { SHUTDOWN_RCV, SHUTDOWN_SEND } from "./packet.js";

/** The receive buffer we promise the guest per connection: the most guest bytes we hold for a slow host peer. */
export const CONNECTION_BUF_ALLOC = 256 * 1024;
/** Tell the guest about forwarded bytes once this many are untold (it may be waiting for credit). */
const CREDIT_UPDATE_THRESHOLD = CONNECTION_BUF_ALLOC / 2;

export type ConnectionState =
  /** Host-initiated: REQUEST owed or sent to the guest, waiting for its RESPONSE. */
  | "requesting"
  | "established";

export class VsockConnection {
  state: ConnectionState;
  /** Control packets owed to the guest (at most one of each at a time, so what a connection queues is bounded). */
  owesRequest = false;
  owesResponse = false;
  owesCreditUpdate = false;
  /** We asked the guest for credit and have had none since: ask once per stall, not once per event. */
  creditRequested = false;
  /** The host socket has (or may have) bytes for the guest: set on a readable edge, cleared when a read would block. */
  hostReadable = false;
  /** The host peer ended its stream; the guest was (or will be) told with SHUTDOWN. */
  hostEof = false;
  /** The guest will send (SEND) or receive (RCV) no more (its SHUTDOWN flags). */
  guestShutdown = 0;
  private hostWriteShut = false;

  /** Bytes from the host waiting for the guest before any read (what followed the CONNECT line). */
  leftover: Uint8Array | null = null;

  /** Guest bytes not yet written to the host socket (it was full), in order; at most CONNECTION_BUF_ALLOC in all. */
  private readonly toHost: Uint8Array[] = [];
  private toHostBytes = 0;

  /** The guest's receive buffer and how much of what we sent it has consumed (from its headers). */
  peerBufAlloc = 0;
  peerFwdCnt = 0;
  /** Bytes we sent the guest. */
  txCnt = 0;
  /** Guest bytes we wrote to the host socket, and how many of those the guest has been told of. */
  fwdCnt = 0;
  private fwdCntTold = 0;

  constructor(
    readonly localPort: number,
    readonly peerPort: number,
    readonly socket: StreamSocket,
    state: ConnectionState,
  ) {
    this.state = state;
  }

  /** Bytes we may send the guest now (u32 wrapping arithmetic, as the counters are le32 on the wire). */
  peerCredit(): number {
    const inFlight = (this.txCnt - this.peerFwdCnt) >>> 0;
    return Math.max(0, this.peerBufAlloc - inFlight);
  }

  /** Takes the credit fields of a packet from the guest; returns whether our credit grew. */
  updatePeerCredit(bufAlloc: number, fwdCnt: number): boolean {
    const before = this.peerCredit();
    this.peerBufAlloc = bufAlloc;
    this.peerFwdCnt = fwdCnt;
    const grew = this.peerCredit() > before;
    if (grew) this.creditRequested = false;
    return grew;
  }

  /** The credit fields we send: our buffer and what we have forwarded. Every packet carries them, so it tells. */
  creditFields(): { bufAlloc: number; fwdCnt: number } {
    this.fwdCntTold = this.fwdCnt;
    this.owesCreditUpdate = false;
    return { bufAlloc: CONNECTION_BUF_ALLOC, fwdCnt: this.fwdCnt >>> 0 };
  }

  /** Whether the connection owes the guest a control packet. */
  owesControl(): boolean {
    return this.owesRequest || this.owesResponse || this.owesCreditUpdate;
  }

  /** Whether it owes the guest a packet: control, data it has credit for, or a request for credit. */
  owesGuest(): boolean {
    return this.owesControl() || (this.hasDataForGuest() && (this.peerCredit() > 0 || !this.creditRequested));
  }

  /** Whether it may have data for the guest: established, host bytes waiting, and the guest still receiving. */
  hasDataForGuest(): boolean {
    return this.state === "established" && (this.leftover !== null || (this.hostReadable && !this.hostEof)) && (this.guestShutdown & SHUTDOWN_RCV) === 0;
  }

  /**
   * Queues guest bytes for the host and writes what the socket takes. Returns false when the guest sent more than
   * the buffer we advertised (a protocol violation: the caller resets the connection). Throws on a socket error.
   */
  sendToHost(bytes: Uint8Array): boolean {
    if (this.toHostBytes + bytes.length > CONNECTION_BUF_ALLOC) return false;
    if (bytes.length > 0) {
      this.toHost.push(bytes);
      this.toHostBytes += bytes.length;
    }
    this.flushToHost();
    return true;
  }

  /** Writes queued guest bytes until the socket is full; then shuts the host's read side if the guest is done sending. */
  flushToHost(): void {
    while (this.toHost.length > 0) {
      const chunk = this.toHost[0];
      const n = this.socket.write(chunk);
      if (n < 0) break;
      this.fwdCnt = (this.fwdCnt + n) >>> 0;
      this.toHostBytes -= n;
      if (n === chunk.length) this.toHost.shift();
      else {
        this.toHost[0] = chunk.subarray(n);
        break;
      }
    }
    if (this.toHost.length === 0 && this.guestShutdown & SHUTDOWN_SEND && !this.hostWriteShut) {
      this.hostWriteShut = true;
      this.socket.shutdownWrite();
    }
    if (((this.fwdCnt - this.fwdCntTold) >>> 0) >= CREDIT_UPDATE_THRESHOLD) this.owesCreditUpdate = true;
  }
}
