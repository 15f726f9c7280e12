/**
 * One guest TCP connection to the MMDS HTTP server, the passive side only (Firecracker dumbo/tcp/
 * connection.rs and endpoint.rs): SYN → SYN-ACK, in-order data into a bounded receive buffer whose free
 * space is the advertised window, one HTTP response at a time sent within the guest's window and MSS,
 * ACKs, and FIN once the guest has closed or the response asked to. Out-of-order data is not kept: a
 * duplicate ACK makes the guest send it again. Sequence numbers are u32 and compared modulo 2^32.
 */
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, type TcpFields, type TcpSegment } from "./frames.js";

/** Firecracker's RCV_BUF_MAX_SIZE: the largest request head accepted, plus one. */
export const RECEIVE_BUFFER_BYTES = 2500;
/** RFC 9293 §3.7.1: the MSS to assume when the SYN has none. */
export const DEFAULT_MSS = 536;
/** What we announce: a 1500-byte Ethernet MTU less the IPv4 and TCP headers. */
export const OUR_MSS = 1460;

export type HttpServe = (head: string) => { bytes: Uint8Array; close: boolean };

/** What the connection wants to put on the wire next (the stack adds addresses and ports). */
export interface SegmentOut extends TcpFields {
  payload?: Uint8Array;
}

const add = (a: number, b: number) => (a + b) >>> 0;
/** a - b in sequence space, as a signed 32-bit distance. */
const diff = (a: number, b: number) => (a - b) | 0;

export class TcpConnection {
  lastActivityMs: number;
  /** Set when the connection is over (closed both ways, reset, or refused); the stack then drops it. */
  done = false;
  /** Set when the connection must end with a RST (the stack sends it, then drops the connection). */
  resetPending = false;
  private readonly iss: number;
  private sndUna: number;
  private sndNxt: number;
  private rcvNxt: number;
  private established = false;
  private synAckPending = true;
  private ackPending = false;
  private remoteWindow: number;
  private readonly mss: number;
  private readonly recv = new Uint8Array(RECEIVE_BUFFER_BYTES);
  private recvLen = 0;
  /** The response being sent, whose first byte has sequence number outSeq. */
  private out: Uint8Array | null = null;
  private outSeq: number;
  private closeAfterResponse = false;
  private finReceived = false;
  private finSeq: number | null = null;
  /** Duplicate ACKs in a row while data is in flight (RFC 5681 §3.2: three mean a segment was lost). */
  private dupAcks = 0;

  constructor(syn: TcpSegment, iss: number, nowMs: number, private readonly serve: HttpServe) {
    this.iss = iss >>> 0;
    this.sndUna = this.iss;
    this.sndNxt = add(this.iss, 1);
    this.outSeq = this.sndNxt;
    this.rcvNxt = add(syn.seq, 1);
    this.remoteWindow = syn.window;
    // An MSS below 64 bytes would only multiply segments; treat it as the default (a guest cannot make us spin).
    this.mss = Math.min(OUR_MSS, syn.mss !== undefined && syn.mss >= 64 ? syn.mss : DEFAULT_MSS);
    this.lastActivityMs = nowMs;
  }

  get localWindow(): number {
    return RECEIVE_BUFFER_BYTES - this.recvLen;
  }

  /** Handles one segment of this connection; returns false for one that was out of place (counted as unusual). */
  receive(s: TcpSegment, nowMs: number): boolean {
    this.lastActivityMs = nowMs;
    if (s.flags & TCP_RST) {
      // RFC 5961 §3: only a RST at the expected sequence number ends the connection.
      if (s.seq !== this.rcvNxt) return false;
      this.done = true;
      this.ackPending = this.synAckPending = false;
      this.out = null;
      return true;
    }
    if (s.flags & TCP_SYN) {
      // A retransmitted SYN (our SYN-ACK was lost) gets the SYN-ACK again; anything else an ACK.
      if (!this.established && add(s.seq, 1) === this.rcvNxt) this.synAckPending = true;
      else this.ackPending = true;
      return false;
    }
    if (!(s.flags & TCP_ACK)) return false;
    let usual = this.onAck(s);
    if (!this.established) return false;
    if (s.payload.length > 0 || s.flags & TCP_FIN) usual = this.onData(s) && usual;
    this.serveRequests();
    return usual;
  }

  /** Whether next() has a segment to give (without making it). */
  hasNext(): boolean {
    if (this.synAckPending) return true;
    if (!this.established) return false;
    if (this.ackPending) return true;
    if (this.out !== null) {
      const windowLeft = diff(add(this.sndUna, this.remoteWindow), this.sndNxt);
      return windowLeft > 0 && diff(add(this.outSeq, this.out.length), this.sndNxt) > 0;
    }
    return this.finSeq === null && (this.finReceived || this.closeAfterResponse);
  }

  /** The next segment to send, or null. */
  next(): SegmentOut | null {
    if (this.synAckPending) {
      this.synAckPending = false;
      return { seq: this.iss, ack: this.rcvNxt, flags: TCP_SYN | TCP_ACK, window: this.localWindow, mss: OUR_MSS };
    }
    if (!this.established) return null;
    if (this.out !== null) {
      const outEnd = add(this.outSeq, this.out.length);
      const windowLeft = diff(add(this.sndUna, this.remoteWindow), this.sndNxt);
      const len = Math.min(this.mss, diff(outEnd, this.sndNxt), windowLeft);
      if (len > 0) {
        const start = diff(this.sndNxt, this.outSeq);
        const payload = this.out.subarray(start, start + len);
        const seq = this.sndNxt;
        this.sndNxt = add(this.sndNxt, len);
        this.ackPending = false;
        return { seq, ack: this.rcvNxt, flags: TCP_ACK | TCP_PSH, window: this.localWindow, payload };
      }
    }
    if (this.out === null && this.finSeq === null && (this.finReceived || this.closeAfterResponse)) {
      this.finSeq = this.sndNxt;
      this.sndNxt = add(this.sndNxt, 1);
      this.ackPending = false;
      return { seq: this.finSeq, ack: this.rcvNxt, flags: TCP_FIN | TCP_ACK, window: this.localWindow };
    }
    if (this.ackPending) {
      this.ackPending = false;
      return { seq: this.sndNxt, ack: this.rcvNxt, flags: TCP_ACK, window: this.localWindow };
    }
    return null;
  }

  /** The RST that ends this connection (RFC 9293 §3.10.7.4 for an established one). */
  resetSegment(): SegmentOut {
    return { seq: this.sndNxt, ack: this.rcvNxt, flags: TCP_RST | TCP_ACK, window: 0 };
  }

  private onAck(s: TcpSegment): boolean {
    // Acceptable: sndUna < ack <= sndNxt; an ACK of what was already acknowledged only updates the window.
    const ahead = diff(s.ack, this.sndUna);
    const beyond = diff(s.ack, this.sndNxt);
    if (beyond > 0) {
      this.ackPending = true;
      return false;
    }
    const inFlight = diff(this.sndNxt, this.sndUna) > 0;
    if (ahead === 0 && inFlight && this.out !== null && s.payload.length === 0 && s.window === this.remoteWindow && !(s.flags & TCP_FIN)) {
      // Fast retransmit, go-back-N: the guest dropped a segment, so everything after sndUna is sent again.
      if (++this.dupAcks >= 3) {
        this.sndNxt = this.sndUna;
        this.dupAcks = 0;
      }
    } else if (ahead > 0) {
      this.dupAcks = 0;
    }
    if (ahead >= 0) {
      this.sndUna = s.ack;
      this.remoteWindow = s.window;
    }
    if (!this.established) {
      if (s.ack !== add(this.iss, 1)) return false;
      this.established = true;
    }
    if (this.out !== null && this.sndUna === add(this.outSeq, this.out.length)) {
      this.out = null;
      this.outSeq = this.sndUna;
    }
    if (this.finSeq !== null && this.sndUna === add(this.finSeq, 1) && this.finReceived) this.done = true;
    return ahead >= 0;
  }

  private onData(s: TcpSegment): boolean {
    if (this.finReceived) return s.payload.length === 0;
    if (s.seq !== this.rcvNxt) {
      // Out of order or a retransmission: acknowledge what we have; the guest resends the rest.
      this.ackPending = true;
      return false;
    }
    const take = Math.min(s.payload.length, RECEIVE_BUFFER_BYTES - this.recvLen);
    this.recv.set(s.payload.subarray(0, take), this.recvLen);
    this.recvLen += take;
    this.rcvNxt = add(this.rcvNxt, take);
    this.ackPending = true;
    if (take === s.payload.length && s.flags & TCP_FIN) {
      this.finReceived = true;
      this.rcvNxt = add(this.rcvNxt, 1);
      // A FIN after our own FIN was acknowledged completes the close.
      if (this.finSeq !== null && this.sndUna === add(this.finSeq, 1)) this.done = true;
    }
    return take === s.payload.length;
  }

  /** Answers the first complete request head in the buffer once the previous response is fully acknowledged. */
  private serveRequests(): void {
    if (this.out !== null || this.closeAfterResponse || this.finSeq !== null) return;
    const end = headEnd(this.recv, this.recvLen);
    if (end < 0) {
      // A full buffer with no end of request in it: over the request size bound, as Firecracker, reset.
      if (this.recvLen === RECEIVE_BUFFER_BYTES) this.resetPending = true;
      return;
    }
    const head = Buffer.from(this.recv.subarray(0, end)).toString("utf8");
    this.recv.copyWithin(0, end, this.recvLen);
    this.recvLen -= end;
    const response = this.serve(head);
    this.out = response.bytes;
    this.outSeq = this.sndNxt;
    this.closeAfterResponse = response.close;
    // The window opened by the bytes consumed is announced with the response.
    this.ackPending = true;
  }
}

/** Index just past the first blank line ("\n\n" or "\n\r\n"), or -1. */
function headEnd(buf: Uint8Array, len: number): number {
  for (let i = 0; i + 1 < len; i++) {
    if (buf[i] !== 0x0a) continue;
    if (buf[i + 1] === 0x0a) return i + 2;
    if (i + 2 < len && buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) return i + 3;
  }
  return -1;
}
