/**
 * A descriptor chain seen as two byte streams: what the device reads, then what it writes.
 * Devices must not assume a particular split of a message across descriptors (virtio 1.2
 * §2.6.4 Message Framing), so headers and status bytes are located by byte offset here.
 */
import type { GuestMemory } from "../../../memory/guest-memory.js";
import type { Descriptor, DescriptorChain } from "./descriptor-chain.js";
import { VirtqError } from "./virtq-error.js";

/** A guest buffer. Segments are values: code shares them between lists and never changes one. */
export interface GuestSegment {
  readonly addr: number;
  readonly len: number;
}

export class ChainBuffers {
  private constructor(
    readonly readable: readonly GuestSegment[],
    readonly writable: readonly GuestSegment[],
  ) {}

  /** Walks and validates `chain`; device-writable buffers must follow all readable ones (virtio 1.2 §2.7.4.2). */
  static of(chain: DescriptorChain): ChainBuffers {
    // A Descriptor is a GuestSegment (plus its direction), so the streams keep the walk's objects:
    // `readable` is the walk's own array, cut where the device-writable part starts.
    const readable: Descriptor[] = [];
    chain.collect(readable);
    let split = 0;
    while (split < readable.length && !readable[split].writable) split++;
    const writable: GuestSegment[] = [];
    for (let i = split; i < readable.length; i++) {
      if (!readable[i].writable) throw new VirtqError("readable-after-writable", `chain ${chain.head} has a device-readable buffer after a device-writable one`);
      writable.push(readable[i]);
    }
    // pop() rather than `length = split`: V8 inlines pop, while a length store is a runtime call.
    while (readable.length > split) readable.pop();
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
    out.push(n === s.len ? s : { addr: s.addr + skip, len: n });
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
