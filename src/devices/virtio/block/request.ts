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

/** Parses the chain's buffers; throws BlockRequestError naming what is wrong. `maxRanges` bounds discard/write-zeroes payloads. */
export function parseRequest(mem: GuestMemory, buffers: ChainBuffers, maxRanges: number): ParsedRequest {
  const writableBytes = buffers.writableBytes;
  if (writableBytes < 1) throw new BlockRequestError("no device-writable status byte", null);
  const status = subSegments(buffers.writable, writableBytes - 1, 1)[0];
  const fail = (why: string): never => { throw new BlockRequestError(why, status); };

  const readableBytes = buffers.readableBytes;
  if (readableBytes < REQUEST_HEADER_SIZE) fail(`header is ${readableBytes} bytes, needs ${REQUEST_HEADER_SIZE}`);
  const header = new DataView(readSegments(mem, subSegments(buffers.readable, 0, REQUEST_HEADER_SIZE)).buffer);
  const type = header.getUint32(0, true);
  const sector = safeNumber(header.getBigUint64(8, true));
  const payloadIn = readableBytes - REQUEST_HEADER_SIZE;
  const payloadOut = writableBytes - 1;
  const readPayload = () => subSegments(buffers.readable, REQUEST_HEADER_SIZE, payloadIn);
  const writePayload = () => subSegments(buffers.writable, 0, payloadOut);

  switch (type) {
    case VIRTIO_BLK_T_IN:
      if (payloadIn > 0) fail(`read request carries ${payloadIn} device-readable data bytes`);
      if (payloadOut % SECTOR_SIZE !== 0) fail(`read of ${payloadOut} bytes is not a multiple of ${SECTOR_SIZE}`);
      return { request: { kind: "in", sector, data: writePayload(), bytes: payloadOut }, status };
    case VIRTIO_BLK_T_OUT:
      if (payloadOut > 0) fail(`write request carries ${payloadOut} device-writable data bytes`);
      if (payloadIn % SECTOR_SIZE !== 0) fail(`write of ${payloadIn} bytes is not a multiple of ${SECTOR_SIZE}`);
      return { request: { kind: "out", sector, data: readPayload(), bytes: payloadIn }, status };
    case VIRTIO_BLK_T_FLUSH:
      return { request: { kind: "flush" }, status };
    case VIRTIO_BLK_T_GET_ID:
      return { request: { kind: "get-id", data: writePayload() }, status };
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES: {
      const count = payloadIn / RANGE_DESCRIPTOR_SIZE;
      if (!Number.isInteger(count) || count < 1 || count > maxRanges) fail(`${payloadIn} payload bytes are not 1 to ${maxRanges} range descriptors of ${RANGE_DESCRIPTOR_SIZE}`);
      const raw = new DataView(readSegments(mem, readPayload()).buffer);
      const ranges: SectorRange[] = [];
      for (let i = 0; i < count; i++) {
        const at = i * RANGE_DESCRIPTOR_SIZE;
        const flags = raw.getUint32(at + 12, true);
        ranges.push({ sector: safeNumber(raw.getBigUint64(at, true)), sectors: raw.getUint32(at + 8, true), unmap: (flags & RANGE_FLAG_UNMAP) !== 0, unknownFlags: flags & ~RANGE_FLAG_UNMAP });
      }
      return { request: { kind: type === VIRTIO_BLK_T_DISCARD ? "discard" : "write-zeroes", ranges }, status };
    }
    default:
      return { request: { kind: "unsupported", type }, status };
  }
}

/** A guest u64 as a number; values past 2^53 become Infinity so every range check refuses them. */
function safeNumber(v: bigint): number {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : Infinity;
}
