/**
 * Splits guest buffers so that each piece has one contiguous host mapping, as needed to hand
 * it to a system call (an iovec) or to take a zero-copy view of it (GuestMemory.slice).
 */
import type { GuestMemory } from "../../memory/guest-memory.js";
import type { GuestSegment } from "./queue/chain-buffers.js";

/**
 * GuestMemory views host memory in spans of at most 1 GiB per region (MAX_SPAN in
 * src/memory/guest-memory.ts). Splitting at these marks too keeps each piece inside one span;
 * if that ever changes, hostAddress()/slice() still refuse a piece that crosses a span.
 */
const SPAN_SIZE = 1 << 30;

export function hostContiguousPieces(mem: GuestMemory, segments: readonly GuestSegment[]): GuestSegment[] {
  const out: GuestSegment[] = [];
  for (const s of segments) {
    if (s.len === 0) continue;
    // The common case, one lookup: the whole segment already lies inside one span.
    if (mem.hostAddressOrUndefined(s.addr, s.len) !== undefined) {
      out.push(s);
      continue;
    }
    let addr = s.addr;
    let left = s.len;
    while (left > 0) {
      const region = mem.regions.find((r) => addr >= r.guestAddr && addr < r.guestAddr + r.size);
      if (!region) {
        // Outside guest RAM: hand the rest on unsplit so the checked access reports it.
        out.push({ addr, len: left });
        break;
      }
      const offsetInRegion = addr - region.guestAddr;
      const spanEnd = region.guestAddr + Math.min(region.size, (Math.floor(offsetInRegion / SPAN_SIZE) + 1) * SPAN_SIZE);
      const n = Math.min(left, spanEnd - addr);
      out.push({ addr, len: n });
      addr += n;
      left -= n;
    }
  }
  return out;
}
