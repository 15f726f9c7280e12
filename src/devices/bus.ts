/**
 * Port-I/O and MMIO buses: devices register an address range and see offsets into it.
 * Lookup is a binary search over sorted, non-overlapping ranges.
 */

export interface BusDevice {
  /** Fills `data` (1, 2, 4 or 8 bytes) with what the guest reads at `offset` into the device's range. */
  read(offset: number, data: Uint8Array): void;
  /** Takes what the guest wrote at `offset`. */
  write(offset: number, data: Uint8Array): void;
}

export class BusError extends Error {
  override readonly name = "BusError";
}

export interface BusRange {
  base: number;
  length: number;
  device: BusDevice;
  name: string;
}

export class Bus {
  private readonly ranges: BusRange[] = [];

  constructor(readonly kind: "pio" | "mmio") {}

  /** Registers `device` at [base, base+length); overlapping an existing range is refused. */
  insert(device: BusDevice, base: number, length: number, name: string): void {
    if (!Number.isSafeInteger(base) || !Number.isSafeInteger(length) || base < 0 || length <= 0) {
      throw new BusError(`${this.kind} range for ${name} is invalid: base 0x${base.toString(16)} length ${length}`);
    }
    const clash = this.ranges.find((r) => base < r.base + r.length && r.base < base + length);
    if (clash) {
      throw new BusError(`${this.kind} range 0x${base.toString(16)}+0x${length.toString(16)} for ${name} overlaps ${clash.name} at 0x${clash.base.toString(16)}+0x${clash.length.toString(16)}`);
    }
    const at = this.ranges.findIndex((r) => r.base > base);
    this.ranges.splice(at < 0 ? this.ranges.length : at, 0, { base, length, device, name });
  }

  private find(addr: number): BusRange | undefined {
    let lo = 0;
    let hi = this.ranges.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = this.ranges[mid];
      if (addr < r.base) hi = mid - 1;
      else if (addr >= r.base + r.length) lo = mid + 1;
      else return r;
    }
    return undefined;
  }

  /** The range that holds `addr` (its device, base and length); undefined when nothing claims it. */
  range(addr: number): Readonly<BusRange> | undefined {
    return this.find(addr);
  }

  /** Dispatches a guest read; returns false when nothing claims `addr` (the caller answers with all-ones, as an open bus does). */
  read(addr: number, data: Uint8Array): boolean {
    const r = this.find(addr);
    if (!r) return false;
    r.device.read(addr - r.base, data);
    return true;
  }

  /** Dispatches a guest write; returns false when nothing claims `addr`. */
  write(addr: number, data: Uint8Array): boolean {
    const r = this.find(addr);
    if (!r) return false;
    r.device.write(addr - r.base, data);
    return true;
  }
}
