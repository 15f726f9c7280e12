/**
 * Guest physical memory: a set of host mappings, each seen through zero-copy views.
 * Every access is bounds-checked here, once: a guest-controlled address outside guest
 * RAM is a GuestMemoryError, never a host access.
 */

/** A guest physical address. Guest RAM stays below 2^53, so a number is exact. */
export type GuestAddress = number;

/** What a worker needs to rebuild a GuestMemory over the same host mapping. */
export interface MemoryRegionDescriptor {
  guestAddr: GuestAddress;
  size: number;
  hostAddr: bigint;
}

export class GuestMemoryError extends Error {
  override readonly name = "GuestMemoryError";
  constructor(readonly addr: number, readonly length: number, reason = "is outside guest RAM") {
    super(`guest range 0x${addr.toString(16)}+0x${length.toString(16)} ${reason}`);
  }
}

/**
 * One contiguous guest range, backed by one contiguous host range, seen through one view (<= 4 GiB). The view is made
 * on first use: V8 counts a view of host memory as external memory and, for one of 128 MiB or more, collects garbage
 * at once (a scavenge, then marking), which a restore would otherwise wait for before its vCPUs run, and more for
 * a bigger guest (bench/snapshot.ts). A span the device thread never touches never gets a view.
 */
class Span {
  private view?: { bytes: Uint8Array; data: DataView };

  constructor(
    /** Index of the region this span is part of, and the span's offset in it. */
    readonly region: number,
    readonly regionOffset: number,
    readonly guestAddr: number,
    readonly size: number,
    readonly hostAddr: bigint,
    /** hostAddr as a number, for building iovecs without BigInt arithmetic (exact: see MAX_HOST_ADDRESS). */
    readonly hostBase: number,
    private readonly viewOf: (hostAddr: bigint, size: number) => Uint8Array,
  ) {}

  get bytes(): Uint8Array {
    return (this.view ??= this.makeView()).bytes;
  }

  get data(): DataView {
    return (this.view ??= this.makeView()).data;
  }

  private makeView(): { bytes: Uint8Array; data: DataView } {
    const bytes = this.viewOf(this.hostAddr, this.size);
    if (bytes.length !== this.size) throw new Error(`host view of ${this.size} bytes came back with ${bytes.length}`);
    return { bytes, data: new DataView(bytes.buffer, bytes.byteOffset, this.size) };
  }
}

/** koffi.view maps at most 4 GiB; 1 GiB spans keep every view well inside that. */
const MAX_SPAN = 1 << 30;
/**
 * Host addresses are kept as numbers too, so they must stay below 2^53. x86-64 user space ends at
 * 2^47 with 4-level paging, and with 5-level paging mmap hands out addresses above 2^47 only when
 * asked to (Linux Documentation/arch/x86/x86_64/5level-paging.rst).
 */
const MAX_HOST_ADDRESS = 2 ** 53;
/** Whether a Uint32Array holds little-endian u32s, as guest structures do: then they can be copied as bytes. */
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;
/**
 * From this many u32s on, readU32s copies bytes (two view objects, then a memcpy) instead of reading
 * u32 by u32, which costs ~4 ns each: faster for an indirect table of 34 descriptors (136 u32s), slower
 * for a 4-u32 descriptor or request header.
 */
const BULK_COPY_U32S = 32;
/** Dirty pages are counted in 4 KiB pages, as KVM's dirty log counts them. */
const DIRTY_PAGE = 4096;

export class GuestMemory {
  private readonly spans: Span[];
  /**
   * One bit per 4 KiB page of each region, set by every access through which this thread may write guest RAM
   * (writes, fills, and the views and host addresses handed out for in-place or syscall writes), while dirty
   * tracking is on. KVM's dirty log sees only what the vCPUs write; a Diff snapshot needs the devices' writes too
   * (Firecracker keeps the same kind of bitmap in vm-memory for its devices).
   */
  private dirty?: Uint32Array[];
  /** Whether `dirty` is shared with other threads' views of this memory (marked atomically). */
  private dirtyShared = false;

  /**
   * `regions` are host mappings; `viewOf(hostAddr, size)` returns zero-copy bytes over host
   * memory (koffi.view in production, part of a plain ArrayBuffer in tests), called when a span is first used.
   */
  constructor(readonly regions: readonly MemoryRegionDescriptor[], viewOf: (hostAddr: bigint, size: number) => Uint8Array) {
    const spans: Span[] = [];
    for (const [region, r] of regions.entries()) {
      for (let off = 0; off < r.size; off += MAX_SPAN) {
        const size = Math.min(MAX_SPAN, r.size - off);
        const hostAddr = r.hostAddr + BigInt(off);
        const hostBase = Number(hostAddr);
        if (hostBase + size > MAX_HOST_ADDRESS) throw new Error(`host mapping at 0x${hostAddr.toString(16)} ends above 2^53`);
        spans.push(new Span(region, off, r.guestAddr + off, size, hostAddr, hostBase, viewOf));
      }
    }
    spans.sort((a, b) => a.guestAddr - b.guestAddr);
    for (let i = 1; i < spans.length; i++) {
      if (spans[i - 1].guestAddr + spans[i - 1].size > spans[i].guestAddr) throw new Error("guest memory regions overlap");
    }
    this.spans = spans;
  }

  /** A GuestMemory over plain ArrayBuffers (tests, fuzzers): region i lives at fake host address (i+1) << 40. */
  static anonymous(layout: readonly { guestAddr: number; size: number }[]): GuestMemory {
    const buffers = new Map<bigint, ArrayBuffer>();
    const regions = layout.map((r, i) => {
      const hostAddr = BigInt(i + 1) << 40n;
      buffers.set(hostAddr, new ArrayBuffer(r.size));
      return { ...r, hostAddr };
    });
    return new GuestMemory(regions, (hostAddr, size) => {
      for (const [base, buf] of buffers) {
        if (hostAddr >= base && hostAddr + BigInt(size) <= base + BigInt(buf.byteLength)) {
          return new Uint8Array(buf, Number(hostAddr - base), size);
        }
      }
      throw new Error("no such host buffer");
    });
  }

  /** Total bytes of guest RAM. */
  get size(): number {
    return this.spans.reduce((n, s) => n + s.size, 0);
  }

  /** The span holding [addr, addr+len), or a GuestMemoryError (len 0 still needs a valid addr). */
  private span(addr: number, len: number): Span {
    const s = this.spanHolding(addr, len);
    if (s) return s;
    checkRange(addr, len);
    if (!this.findSpan(addr)) throw new GuestMemoryError(addr, len);
    throw new GuestMemoryError(addr, len, "crosses the end of a guest memory region");
  }

  /**
   * The span holding all of [addr, addr+len), or undefined (invalid range, outside RAM, or across
   * spans). Never throws: the hot paths call it first and leave the error to the slow path.
   */
  private spanHolding(addr: number, len: number): Span | undefined {
    if (!isValidRange(addr, len)) return undefined;
    const s = this.findSpan(addr);
    return s !== undefined && addr + len <= s.guestAddr + s.size ? s : undefined;
  }

  /** True when [addr, addr+len) lies inside guest RAM (possibly across regions). */
  contains(addr: number, len: number): boolean {
    if (this.spanHolding(addr, len)) return true;
    try {
      this.forEachPiece(addr, len, () => {});
      return true;
    } catch {
      return false;
    }
  }

  /** Calls `fn` for each span-contained piece of [addr, addr+len), in order; throws if any byte is outside RAM. */
  private forEachPiece(addr: number, len: number, fn: (s: Span, off: number, n: number, done: number) => void): void {
    checkRange(addr, len);
    let done = 0;
    while (done < len || (len === 0 && done === 0)) {
      const a = addr + done;
      const s = this.findSpan(a);
      if (!s) throw new GuestMemoryError(addr, len);
      const off = a - s.guestAddr;
      const n = Math.min(len - done, s.size - off);
      fn(s, off, n, done);
      done += n;
      if (len === 0) break;
    }
  }

  private findSpan(addr: number): Span | undefined {
    let lo = 0;
    let hi = this.spans.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = this.spans[mid];
      if (addr < s.guestAddr) hi = mid - 1;
      else if (addr >= s.guestAddr + s.size) lo = mid + 1;
      else return s;
    }
    return undefined;
  }

  /** A zero-copy view of [addr, addr+len); the range must sit inside one region span. */
  slice(addr: GuestAddress, len: number): Uint8Array {
    const s = this.span(addr, len);
    const off = addr - s.guestAddr;
    if (this.dirty) this.markSpan(s, off, len);
    return s.bytes.subarray(off, off + len);
  }

  /** A copy of [addr, addr+len), which may cross regions that are contiguous in guest space. */
  read(addr: GuestAddress, len: number): Uint8Array {
    const out = new Uint8Array(len);
    this.forEachPiece(addr, len, (s, off, n, done) => out.set(s.bytes.subarray(off, off + n), done));
    return out;
  }

  /** Copies `data` to guest memory at `addr`, checking the whole range before writing any byte. */
  write(addr: GuestAddress, data: Uint8Array): void {
    if (!this.contains(addr, data.length)) throw new GuestMemoryError(addr, data.length);
    this.forEachPiece(addr, data.length, (s, off, n, done) => {
      s.bytes.set(data.subarray(done, done + n), off);
      if (this.dirty) this.markSpan(s, off, n);
    });
  }

  /** Fills [addr, addr+len) with `value`. */
  fill(addr: GuestAddress, len: number, value = 0): void {
    if (!this.contains(addr, len)) throw new GuestMemoryError(addr, len);
    this.forEachPiece(addr, len, (s, off, n) => {
      s.bytes.fill(value, off, off + n);
      if (this.dirty) this.markSpan(s, off, n);
    });
  }

  readU8(addr: GuestAddress): number { const s = this.span(addr, 1); return s.bytes[addr - s.guestAddr]; }
  readU16(addr: GuestAddress): number { const s = this.span(addr, 2); return s.data.getUint16(addr - s.guestAddr, true); }
  readU32(addr: GuestAddress): number { const s = this.span(addr, 4); return s.data.getUint32(addr - s.guestAddr, true); }
  readU64(addr: GuestAddress): bigint { const s = this.span(addr, 8); return s.data.getBigUint64(addr - s.guestAddr, true); }
  writeU8(addr: GuestAddress, v: number): void { const s = this.span(addr, 1); s.bytes[addr - s.guestAddr] = v; if (this.dirty) this.markSpan(s, addr - s.guestAddr, 1); }
  writeU16(addr: GuestAddress, v: number): void { const s = this.span(addr, 2); s.data.setUint16(addr - s.guestAddr, v, true); if (this.dirty) this.markSpan(s, addr - s.guestAddr, 2); }
  writeU32(addr: GuestAddress, v: number): void { const s = this.span(addr, 4); s.data.setUint32(addr - s.guestAddr, v, true); if (this.dirty) this.markSpan(s, addr - s.guestAddr, 4); }
  writeU64(addr: GuestAddress, v: bigint): void { const s = this.span(addr, 8); s.data.setBigUint64(addr - s.guestAddr, v, true); if (this.dirty) this.markSpan(s, addr - s.guestAddr, 8); }

  /**
   * Reads `count` little-endian u32s from `addr` on into the start of `out`: one range check for a
   * whole small structure or table (descriptors, a request header) instead of one per field. The
   * range may cross regions that are contiguous in guest space; throws GuestMemoryError if it leaves RAM.
   */
  readU32s(addr: GuestAddress, out: Uint32Array, count = out.length): void {
    if (!Number.isInteger(count) || count < 0 || count > out.length) throw new RangeError(`${count} u32s do not fit in an array of ${out.length}`);
    const s = this.spanHolding(addr, count * 4);
    if (!s) return decodeU32s(this.read(addr, count * 4), out);
    const off = addr - s.guestAddr;
    if (HOST_IS_LITTLE_ENDIAN && count >= BULK_COPY_U32S) {
      new Uint8Array(out.buffer, out.byteOffset, count * 4).set(s.bytes.subarray(off, off + count * 4));
      return;
    }
    const data = s.data;
    for (let i = 0; i < count; i++) out[i] = data.getUint32(off + i * 4, true);
  }

  /**
   * Host address of guest range [addr, addr+len), for handing guest memory straight to a
   * syscall (preadv/pwritev into guest buffers). The range must sit inside one span.
   */
  hostAddress(addr: GuestAddress, len: number): bigint {
    const s = this.span(addr, len);
    if (this.dirty) this.markSpan(s, addr - s.guestAddr, len);
    return s.hostAddr + BigInt(addr - s.guestAddr);
  }

  /**
   * hostAddress() as a number (exact, below 2^53), or undefined where hostAddress() would throw:
   * for building iovecs per request without BigInt or exceptions on the fast path.
   */
  hostAddressOrUndefined(addr: GuestAddress, len: number): number | undefined {
    const s = this.spanHolding(addr, len);
    if (s && this.dirty) this.markSpan(s, addr - s.guestAddr, len);
    return s ? s.hostBase + (addr - s.guestAddr) : undefined;
  }

  /**
   * Starts recording the pages this thread may write (see `dirty`); idempotent. `shared`: one record per region, in
   * shared memory (dirtyPageRecords()), that other threads writing guest RAM mark too (atomically, then).
   */
  trackDirtyPages(shared?: readonly SharedArrayBuffer[]): void {
    if (shared && shared.length !== this.regions.length) throw new RangeError(`${shared.length} dirty page records for ${this.regions.length} regions`);
    this.dirtyShared = shared !== undefined;
    this.dirty ??= shared ? shared.map((b) => new Uint32Array(b)) : this.regions.map((r) => new Uint32Array(dirtyRecordWords(r.size)));
  }

  /**
   * The pages of region `index` recorded since the last call, as 64-bit words (the layout of KVM_GET_DIRTY_LOG's
   * bitmap, so the two can be OR'ed), and a fresh record from now on. Empty when tracking is off.
   */
  takeDirtyPages(index: number): BigUint64Array {
    const words = this.dirty?.[index];
    const out = new BigUint64Array(Math.ceil(this.regions[index].size / DIRTY_PAGE / 64));
    if (!words) return out;
    const into = new Uint32Array(out.buffer);
    if (this.dirtyShared) {
      // Word by word, so a page another thread marks meanwhile is in this record or the next, never lost.
      for (let i = 0; i < words.length && i < into.length; i++) into[i] = Atomics.exchange(words, i, 0);
      return out;
    }
    into.set(words.subarray(0, out.length * 2));
    words.fill(0);
    return out;
  }

  private markSpan(s: Span, off: number, len: number): void {
    const words = this.dirty![s.region];
    const first = Math.floor((s.regionOffset + off) / DIRTY_PAGE);
    const last = Math.floor((s.regionOffset + off + Math.max(len, 1) - 1) / DIRTY_PAGE);
    if (this.dirtyShared) for (let p = first; p <= last; p++) Atomics.or(words, p >>> 5, 1 << (p & 31));
    else for (let p = first; p <= last; p++) words[p >>> 5] |= 1 << (p & 31);
  }
}

/** 32-bit words of a dirty page record for a region of `size` bytes. */
function dirtyRecordWords(size: number): number {
  return Math.ceil(size / DIRTY_PAGE / 32);
}

/** Dirty page records in shared memory, one per region, for threads that all write guest RAM (trackDirtyPages). */
export function dirtyPageRecords(regions: readonly { size: number }[]): SharedArrayBuffer[] {
  // Whole 64-bit words: takeDirtyPages reads the record as KVM's bitmap of u64s.
  return regions.map((r) => new SharedArrayBuffer(Math.ceil(dirtyRecordWords(r.size) / 2) * 8));
}

function isValidRange(addr: number, len: number): boolean {
  return Number.isSafeInteger(addr) && Number.isSafeInteger(len) && addr >= 0 && len >= 0;
}

function checkRange(addr: number, len: number): void {
  if (!isValidRange(addr, len)) throw new GuestMemoryError(addr, len, "is not a valid address range");
}

function decodeU32s(bytes: Uint8Array, out: Uint32Array): void {
  const data = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  for (let i = 0; i * 4 < bytes.length; i++) out[i] = data.getUint32(i * 4, true);
}
