/**
 * Parses a virtio-blk request out of a descriptor chain (virtio 1.2 §5.2.6 Device Operation):
 * a 16-byte header the device reads, data, and a 1-byte status the device writes last.
 */
import type { GuestMemory } from "../../../memory/guest-memory.js";
import { readSegments, subSegments, type ChainBuffers, type GuestSegment } from "../queue/chain-buffers.js";

/** Request types, virtio 1.2 §5.2.6 (linux/virtio_blk.h VIRTIO_BLK_T_*). */
export const VIRTIO_BLK_T_IN = 0;
export const VIRTIO_BLK_T_OUT = 1;
export const VIRTIO_BLK_T_FLUSH = 4;
export const VIRTIO_BLK_T_GET_ID = 8;
export const VIRTIO_BLK_T_DISCARD = 11;
export const VIRTIO_BLK_T_WRITE_ZEROES = 13;

/** Status values, virtio 1.2 §5.2.6. */
export const VIRTIO_BLK_S_OK = 0;
export const VIRTIO_BLK_S_IOERR = 1;
export const VIRTIO_BLK_S_UNSUPP = 2;

/** Sector size for all request offsets, virtio 1.2 §5.2.6 ("always 512 bytes"). */
export const SECTOR_SIZE = 512;
/** struct virtio_blk_req header: le32 type, le32 reserved, le64 sector. */
export const REQUEST_HEADER_SIZE = 16;
/** struct virtio_blk_discard_write_zeroes: le64 sector, le32 num_sectors, le32 flags. */
export const RANGE_DESCRIPTOR_SIZE = 16;
/**
 * Most data bytes one read or write may carry: the used length of a read (data + status byte) is a le32
 * (virtio 1.2 §2.7.8), so anything larger could never be completed. Checked before any I/O is done.
 */
export const MAX_REQUEST_DATA_BYTES = 2 ** 32 - SECTOR_SIZE;
/** VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP. */
const RANGE_FLAG_UNMAP = 1;

export interface SectorRange {
  sector: number;
  sectors: number;
  unmap: boolean;
  /** Flag bits other than UNMAP: reserved, so a request carrying them is unsupported. */
  unknownFlags: number;
}

export type BlockRequest =
  | { kind: "in" | "out"; sector: number; data: GuestSegment[]; bytes: number }
  | { kind: "flush" }
  | { kind: "get-id"; data: GuestSegment[] }
  | { kind: "discard" | "write-zeroes"; ranges: SectorRange[] }
  | { kind: "unsupported"; type: number };

/** A request whose chain does not have the shape its type needs. */
export class BlockRequestError extends Error {
  override readonly name = "BlockRequestError";
  /** The status byte, when the chain has one the device can report IOERR in. */
  constructor(message: string, readonly status: GuestSegment | null) {
    super(message);
  }
}

export interface ParsedRequest {
  request: BlockRequest;
  status: GuestSegment;
}

/** The header as four u32s: type, reserved, sector low, sector high. Each parse fills it and reads it right away. */
const header = new Uint32Array(REQUEST_HEADER_SIZE / 4);
/** A u64 whose high u32 is at least this is past 2^53. */
const UNSAFE_HIGH = 2 ** 21;

/** Parses the chain's buffers; throws BlockRequestError naming what is wrong. `maxRanges` bounds discard/write-zeroes payloads. */
export function parseRequest(mem: GuestMemory, buffers: ChainBuffers, maxRanges: number): ParsedRequest {
  const writableBytes = buffers.writableBytes;
  if (writableBytes < 1) throw new BlockRequestError("no device-writable status byte", null);
  const status = lastByte(buffers.writable);

  const readableBytes = buffers.readableBytes;
  if (readableBytes < REQUEST_HEADER_SIZE) throw new BlockRequestError(`header is ${readableBytes} bytes, needs ${REQUEST_HEADER_SIZE}`, status);
  readHeader(mem, buffers.readable);
  const type = header[0];
  const sector = u64Number(header[2], header[3]);
  const payloadIn = readableBytes - REQUEST_HEADER_SIZE;
  const payloadOut = writableBytes - 1;

  switch (type) {
    case VIRTIO_BLK_T_IN:
      if (payloadIn > 0) throw new BlockRequestError(`read request carries ${payloadIn} device-readable data bytes`, status);
      if (payloadOut % SECTOR_SIZE !== 0) throw new BlockRequestError(`read of ${payloadOut} bytes is not a multiple of ${SECTOR_SIZE}`, status);
      if (payloadOut > MAX_REQUEST_DATA_BYTES) throw new BlockRequestError(`read of ${payloadOut} bytes is more than the ${MAX_REQUEST_DATA_BYTES} one request may carry`, status);
      return { request: { kind: "in", sector, data: subSegments(buffers.writable, 0, payloadOut), bytes: payloadOut }, status };
    case VIRTIO_BLK_T_OUT:
      if (payloadOut > 0) throw new BlockRequestError(`write request carries ${payloadOut} device-writable data bytes`, status);
      if (payloadIn % SECTOR_SIZE !== 0) throw new BlockRequestError(`write of ${payloadIn} bytes is not a multiple of ${SECTOR_SIZE}`, status);
      if (payloadIn > MAX_REQUEST_DATA_BYTES) throw new BlockRequestError(`write of ${payloadIn} bytes is more than the ${MAX_REQUEST_DATA_BYTES} one request may carry`, status);
      return { request: { kind: "out", sector, data: subSegments(buffers.readable, REQUEST_HEADER_SIZE, payloadIn), bytes: payloadIn }, status };
    case VIRTIO_BLK_T_FLUSH:
      return { request: { kind: "flush" }, status };
    case VIRTIO_BLK_T_GET_ID:
      return { request: { kind: "get-id", data: subSegments(buffers.writable, 0, payloadOut) }, status };
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES: {
      const count = payloadIn / RANGE_DESCRIPTOR_SIZE;
      if (!Number.isInteger(count) || count < 1 || count > maxRanges) {
        throw new BlockRequestError(`${payloadIn} payload bytes are not 1 to ${maxRanges} range descriptors of ${RANGE_DESCRIPTOR_SIZE}`, status);
      }
      const raw = new DataView(readSegments(mem, subSegments(buffers.readable, REQUEST_HEADER_SIZE, payloadIn)).buffer);
      const ranges: SectorRange[] = [];
      for (let i = 0; i < count; i++) {
        const at = i * RANGE_DESCRIPTOR_SIZE;
        const flags = raw.getUint32(at + 12, true);
        const sector = u64Number(raw.getUint32(at, true), raw.getUint32(at + 4, true));
        ranges.push({ sector, sectors: raw.getUint32(at + 8, true), unmap: (flags & RANGE_FLAG_UNMAP) !== 0, unknownFlags: flags & ~RANGE_FLAG_UNMAP });
      }
      return { request: { kind: type === VIRTIO_BLK_T_DISCARD ? "discard" : "write-zeroes", ranges }, status };
    }
    default:
      return { request: { kind: "unsupported", type }, status };
  }
}

/** The last byte of a byte stream of `segments` holding at least one byte: where the status goes. */
function lastByte(segments: readonly GuestSegment[]): GuestSegment {
  let i = segments.length - 1;
  while (segments[i].len === 0) i--;
  return { addr: segments[i].addr + segments[i].len - 1, len: 1 };
}

/**
 * Fills `header` from the first REQUEST_HEADER_SIZE readable bytes: in place when the first buffer
 * holds them all (how drivers send it), else gathered across buffers (virtio 1.2 §2.6.4 allows any split).
 */
function readHeader(mem: GuestMemory, readable: readonly GuestSegment[]): void {
  if (readable[0].len >= REQUEST_HEADER_SIZE) return mem.readU32s(readable[0].addr, header);
  const bytes = readSegments(mem, subSegments(readable, 0, REQUEST_HEADER_SIZE));
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < header.length; i++) header[i] = view.getUint32(i * 4, true);
}

/** A guest le64 given as two u32 halves, as a number; values past 2^53 become Infinity so every range check refuses them. */
function u64Number(low: number, high: number): number {
  return high < UNSAFE_HIGH ? high * 2 ** 32 + low : Infinity;
}
