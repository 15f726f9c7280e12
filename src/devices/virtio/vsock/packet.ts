/**
 * virtio-vsock packets (virtio 1.2 §5.10.6): a 44-byte little-endian header, then `len` bytes of payload for RW.
 *   le64 src_cid; le64 dst_cid; le32 src_port; le32 dst_port; le32 len; le16 type; le16 op; le32 flags;
 *   le32 buf_alloc; le32 fwd_cnt;
 */

export const VSOCK_HEADER_SIZE = 44;
/** The host's CID (virtio 1.2 §5.10.4: CIDs 0-2 are reserved; 2 is the host). */
export const HOST_CID = 2;
/** VIRTIO_VSOCK_TYPE_STREAM: the only socket type offered (no VIRTIO_VSOCK_F_SEQPACKET). */
export const TYPE_STREAM = 1;

/** VIRTIO_VSOCK_OP_* (virtio 1.2 §5.10.6). */
export const Op = {
  Invalid: 0,
  Request: 1,
  Response: 2,
  Rst: 3,
  Shutdown: 4,
  Rw: 5,
  CreditUpdate: 6,
  CreditRequest: 7,
} as const;

/** VIRTIO_VSOCK_SHUTDOWN_F_*: the sender will receive (RCV) or send (SEND) no more. */
export const SHUTDOWN_RCV = 1;
export const SHUTDOWN_SEND = 2;

export interface VsockHeader {
  srcCid: number;
  dstCid: number;
  srcPort: number;
  dstPort: number;
  len: number;
  type: number;
  op: number;
  flags: number;
  bufAlloc: number;
  fwdCnt: number;
}

/** CIDs are le64 on the wire; Linux's are 32-bit, and a larger one can name neither end here. */
function readCid(view: DataView, at: number): number {
  const high = view.getUint32(at + 4, true);
  return high === 0 ? view.getUint32(at, true) : -1;
}

export function decodeHeader(bytes: Uint8Array): VsockHeader {
  const v = new DataView(bytes.buffer, bytes.byteOffset, VSOCK_HEADER_SIZE);
  return {
    srcCid: readCid(v, 0),
    dstCid: readCid(v, 8),
    srcPort: v.getUint32(16, true),
    dstPort: v.getUint32(20, true),
    len: v.getUint32(24, true),
    type: v.getUint16(28, true),
    op: v.getUint16(30, true),
    flags: v.getUint32(32, true),
    bufAlloc: v.getUint32(36, true),
    fwdCnt: v.getUint32(40, true),
  };
}

export function encodeHeader(h: VsockHeader, out: Uint8Array): void {
  const v = new DataView(out.buffer, out.byteOffset, VSOCK_HEADER_SIZE);
  v.setUint32(0, h.srcCid, true);
  v.setUint32(4, 0, true);
  v.setUint32(8, h.dstCid, true);
  v.setUint32(12, 0, true);
  v.setUint32(16, h.srcPort, true);
  v.setUint32(20, h.dstPort, true);
  v.setUint32(24, h.len, true);
  v.setUint16(28, h.type, true);
  v.setUint16(30, h.op, true);
  v.setUint32(32, h.flags, true);
  v.setUint32(36, h.bufAlloc >>> 0, true);
  v.setUint32(40, h.fwdCnt >>> 0, true);
}
