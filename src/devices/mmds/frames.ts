/**
 * The few frame formats MMDS speaks, parsed from and built into byte arrays: Ethernet II, ARP for
 * IPv4 over Ethernet (RFC 826), IPv4 without options (RFC 791) and TCP (RFC 9293) with the MSS option.
 * Parsers return undefined for anything malformed; a guest's frame is never trusted.
 */

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETH_HEADER = 14;
const ARP_LEN = 28;
const IPV4_HEADER = 20;
export const TCP_HEADER = 20;
export const PROTOCOL_TCP = 6;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

export interface ArpRequest {
  senderMac: Uint8Array;
  senderIp: number;
  targetIp: number;
}

/** A TCP segment's own fields (RFC 9293 §3.1), received or to send. */
export interface TcpFields {
  seq: number;
  ack: number;
  flags: number;
  window: number;
  /** The MSS option: a SYN's, if it had one; added to a SYN-ACK we send. */
  mss?: number;
}

export interface TcpSegment extends TcpFields {
  srcMac: Uint8Array;
  srcIp: number;
  dstIp: number;
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
}

const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

export function ethertype(frame: Uint8Array): number | undefined {
  return frame.length < ETH_HEADER ? undefined : view(frame).getUint16(12);
}

/** The target IP of an ARP frame, or the destination of an IPv4 one, without further checks (for the detour decision). */
export function destinationIp(frame: Uint8Array): number | undefined {
  const type = ethertype(frame);
  if (type === ETHERTYPE_ARP && frame.length >= ETH_HEADER + ARP_LEN) return view(frame).getUint32(ETH_HEADER + 24);
  if (type === ETHERTYPE_IPV4 && frame.length >= ETH_HEADER + IPV4_HEADER) return view(frame).getUint32(ETH_HEADER + 16);
  return undefined;
}

export function parseArpRequest(frame: Uint8Array): ArpRequest | undefined {
  if (ethertype(frame) !== ETHERTYPE_ARP || frame.length < ETH_HEADER + ARP_LEN) return undefined;
  const v = view(frame);
  const o = ETH_HEADER;
  // Ethernet (1) / IPv4 (0x0800), 6-byte and 4-byte addresses, operation 1 = request.
  if (v.getUint16(o) !== 1 || v.getUint16(o + 2) !== ETHERTYPE_IPV4 || frame[o + 4] !== 6 || frame[o + 5] !== 4 || v.getUint16(o + 6) !== 1) return undefined;
  return { senderMac: frame.slice(o + 8, o + 14), senderIp: v.getUint32(o + 14), targetIp: v.getUint32(o + 24) };
}

export function buildArpReply(ourMac: Uint8Array, ourIp: number, to: ArpRequest): Uint8Array {
  const frame = new Uint8Array(ETH_HEADER + ARP_LEN);
  const v = view(frame);
  writeEthernet(frame, to.senderMac, ourMac, ETHERTYPE_ARP);
  const o = ETH_HEADER;
  v.setUint16(o, 1);
  v.setUint16(o + 2, ETHERTYPE_IPV4);
  frame[o + 4] = 6;
  frame[o + 5] = 4;
  v.setUint16(o + 6, 2);
  frame.set(ourMac, o + 8);
  v.setUint32(o + 14, ourIp);
  frame.set(to.senderMac, o + 18);
  v.setUint32(o + 24, to.senderIp);
  return frame;
}

export type Ipv4Parse = { kind: "tcp"; segment: TcpSegment } | { kind: "other-protocol" } | { kind: "malformed" };

/**
 * An IPv4 frame's TCP segment. Checksums are not verified: with VIRTIO_NET_F_CSUM the guest leaves them to
 * the device (Firecracker's MMDS skips them too).
 */
export function parseIpv4Tcp(frame: Uint8Array): Ipv4Parse {
  if (ethertype(frame) !== ETHERTYPE_IPV4 || frame.length < ETH_HEADER + IPV4_HEADER) return { kind: "malformed" };
  const v = view(frame);
  const o = ETH_HEADER;
  const ihl = (frame[o] & 0x0f) * 4;
  const total = v.getUint16(o + 2);
  if (frame[o] >> 4 !== 4 || ihl < IPV4_HEADER || total < ihl || o + total > frame.length) return { kind: "malformed" };
  // Fragments (more-fragments set or an offset) are not reassembled.
  if ((v.getUint16(o + 6) & 0x3fff) !== 0) return { kind: "malformed" };
  if (frame[o + 9] !== PROTOCOL_TCP) return { kind: "other-protocol" };
  const t = o + ihl;
  const tcpLen = total - ihl;
  if (tcpLen < TCP_HEADER) return { kind: "malformed" };
  const dataOffset = (frame[t + 12] >> 4) * 4;
  if (dataOffset < TCP_HEADER || dataOffset > tcpLen) return { kind: "malformed" };
  const segment: TcpSegment = {
    srcMac: frame.slice(6, 12),
    srcIp: v.getUint32(o + 12),
    dstIp: v.getUint32(o + 16),
    srcPort: v.getUint16(t),
    dstPort: v.getUint16(t + 2),
    seq: v.getUint32(t + 4),
    ack: v.getUint32(t + 8),
    flags: frame[t + 13] & 0x3f,
    window: v.getUint16(t + 14),
    payload: frame.slice(t + dataOffset, o + total),
  };
  const mss = parseMssOption(frame.subarray(t + TCP_HEADER, t + dataOffset));
  if (mss !== undefined) segment.mss = mss;
  return { kind: "tcp", segment };
}

/** RFC 9293 §3.1 options: kind 0 ends, 1 pads, 2 is MSS (length 4); others are skipped by their length. */
function parseMssOption(options: Uint8Array): number | undefined {
  for (let i = 0; i < options.length; ) {
    const kind = options[i];
    if (kind === 0) return undefined;
    if (kind === 1) {
      i++;
      continue;
    }
    const len = options[i + 1];
    if (len === undefined || len < 2 || i + len > options.length) return undefined;
    if (kind === 2 && len === 4) return (options[i + 2] << 8) | options[i + 3];
    i += len;
  }
  return undefined;
}

export interface TcpOut extends TcpFields {
  srcMac: Uint8Array;
  dstMac: Uint8Array;
  srcIp: number;
  dstIp: number;
  srcPort: number;
  dstPort: number;
  payload?: Uint8Array;
}

/** An Ethernet + IPv4 + TCP frame with both checksums filled in (the guest is told nothing is left to offload). */
export function buildTcpFrame(s: TcpOut): Uint8Array {
  const optLen = s.mss === undefined ? 0 : 4;
  const payload = s.payload ?? new Uint8Array(0);
  const tcpLen = TCP_HEADER + optLen + payload.length;
  const frame = new Uint8Array(ETH_HEADER + IPV4_HEADER + tcpLen);
  const v = view(frame);
  writeEthernet(frame, s.dstMac, s.srcMac, ETHERTYPE_IPV4);
  const o = ETH_HEADER;
  frame[o] = 0x45;
  v.setUint16(o + 2, IPV4_HEADER + tcpLen);
  v.setUint16(o + 6, 0x4000); // don't fragment
  frame[o + 8] = 64;
  frame[o + 9] = PROTOCOL_TCP;
  v.setUint32(o + 12, s.srcIp);
  v.setUint32(o + 16, s.dstIp);
  v.setUint16(o + 10, checksum(frame.subarray(o, o + IPV4_HEADER), 0));
  const t = o + IPV4_HEADER;
  v.setUint16(t, s.srcPort);
  v.setUint16(t + 2, s.dstPort);
  v.setUint32(t + 4, s.seq >>> 0);
  v.setUint32(t + 8, s.ack >>> 0);
  frame[t + 12] = ((TCP_HEADER + optLen) / 4) << 4;
  frame[t + 13] = s.flags;
  v.setUint16(t + 14, s.window);
  if (s.mss !== undefined) {
    frame[t + 20] = 2;
    frame[t + 21] = 4;
    v.setUint16(t + 22, s.mss);
  }
  frame.set(payload, t + TCP_HEADER + optLen);
  // Pseudo-header (RFC 9293 §3.1): source, destination, zero, protocol, TCP length.
  const pseudo = ((s.srcIp >>> 16) + (s.srcIp & 0xffff) + (s.dstIp >>> 16) + (s.dstIp & 0xffff) + PROTOCOL_TCP + tcpLen) >>> 0;
  v.setUint16(t + 16, checksum(frame.subarray(t), pseudo));
  return frame;
}

/** The Internet checksum (RFC 1071) of `bytes`, starting from the partial sum `initial`. */
export function checksum(bytes: Uint8Array, initial: number): number {
  let sum = initial;
  for (let i = 0; i + 1 < bytes.length; i += 2) sum += (bytes[i] << 8) | bytes[i + 1];
  if (bytes.length & 1) sum += bytes[bytes.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

function writeEthernet(frame: Uint8Array, dst: Uint8Array, src: Uint8Array, type: number): void {
  frame.set(dst, 0);
  frame.set(src, 6);
  view(frame).setUint16(12, type);
}

export function ipv4ToNumber(octets: readonly number[]): number {
  return ((octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]) >>> 0;
}
