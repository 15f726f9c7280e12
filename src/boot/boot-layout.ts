/**
 * Guards the guest-physical layout of one boot: kernel segments, initrd and boot structures
 * must not overlap, or one would silently overwrite another.
 */

/** A half-open guest-physical range [start, end). */
export interface AddressRange {
  start: number;
  end: number;
}

export interface NamedRange extends AddressRange {
  name: string;
}

export class BootLayoutError extends Error {
  override readonly name = "BootLayoutError";
}

const hex = (n: number) => `0x${n.toString(16)}`;

/** Throws BootLayoutError naming the first two ranges that overlap. */
export function assertDisjoint(ranges: readonly NamedRange[]): void {
  const sorted = ranges.filter((r) => r.end > r.start).sort((a, b) => a.start - b.start);
  let farthest = sorted[0];
  for (const r of sorted.slice(1)) {
    if (r.start < farthest.end) {
      throw new BootLayoutError(
        `${farthest.name} [${hex(farthest.start)}, ${hex(farthest.end)}) overlaps ${r.name} [${hex(r.start)}, ${hex(r.end)})`,
      );
    }
    if (r.end > farthest.end) farthest = r;
  }
}
