/**
 * A descriptor chain seen as two byte streams: what the device reads, then what it writes.
 * Devices must not assume a particular split of a message across descriptors (virtio 1.2
 * §2.6.4 Message Framing), so headers and status bytes are located by byte offset here.
 */
import type { GuestMemory } from "../../../memory/guest-memory.js";
import type { DescriptorChain } from "./descriptor-chain.js";
import { VirtqError } from "./virtq-error.js";

export interface GuestSegment {
  addr: number;
  len: number;
}

export class ChainBuffers {
  private constructor(
    readonly readable: readonly GuestSegment[],
    readonly writable: readonly GuestSegment[],
  ) {}

  /** Walks and validates `chain`; device-writable buffers must follow all readable ones (virtio 1.2 §2.7.4.2). */
  static of(chain: DescriptorChain): ChainBuffers {
    const readable: GuestSegment[] = [];
    const writable: GuestSegment[] = [];
    for (const d of chain) {
      if (d.writable) writable.push({ addr: d.addr, len: d.len });
      else if (writable.length > 0) throw new VirtqError("readable-after-writable", `chain ${chain.head} has a device-readable buffer after a device-writable one`);
      else readable.push({ addr: d.addr, len: d.len });
    }
    return new ChainBuffers(readable, writable);
  }

  get readableBytes(): number {
    return totalLength(this.readable);
  }

  get writableBytes(): number {
    return totalLength(this.writable);
  }
}

export function totalLength(segments: readonly GuestSegment[]): number {
  let n = 0;
  for (const s of segments) n += s.len;
  return n;
}

/** The part [offset, offset+length) of the byte stream formed by `segments`; throws if it runs past the end. */
export function subSegments(segments: readonly GuestSegment[], offset: number, length: number): GuestSegment[] {
  const out: GuestSegment[] = [];
  let skip = offset;
  let want = length;
  for (const s of segments) {
    if (want === 0) break;
    if (skip >= s.len) {
      skip -= s.len;
      continue;
    }
    const n = Math.min(s.len - skip, want);
    out.push({ addr: s.addr + skip, len: n });
    want -= n;
    skip = 0;
  }
  if (want > 0) throw new VirtqError("chain-layout", `buffers hold fewer than ${offset + length} bytes`);
  return out;
}

/** Copies the bytes of `segments` out of guest memory. */
export function readSegments(mem: GuestMemory, segments: readonly GuestSegment[]): Uint8Array {
  const out = new Uint8Array(totalLength(segments));
  let at = 0;
  for (const s of segments) {
    out.set(mem.read(s.addr, s.len), at);
    at += s.len;
  }
  return out;
}

/** Copies `data` into the byte stream of `segments` (which must be long enough); returns bytes written. */
export function writeSegments(mem: GuestMemory, segments: readonly GuestSegment[], data: Uint8Array): number {
  let at = 0;
  for (const s of subSegments(segments, 0, data.length)) {
    mem.write(s.addr, data.subarray(at, at + s.len));
    at += s.len;
  }
  return at;
}
