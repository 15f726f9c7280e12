/**
 * Where a guest's RAM lives and the BIOS-style memory map (e820) that tells the kernel so.
 */

import { EBDA_START, HIGH_RAM_START, HIMEM_START, MiB, MMIO_HOLE_START, PAGE_SIZE } from "./layout.js";

/** e820 entry types (Linux arch/x86/include/uapi/asm/e820 types, ACPI "address range types"). */
export const E820_RAM = 1;
export const E820_RESERVED = 2;

export interface E820Entry {
  addr: number;
  size: number;
  type: number;
}

export interface RamRegion {
  guestAddr: number;
  size: number;
}

/** Smallest guest: the boot area below 1 MiB plus 1 MiB above it for a kernel. */
export const MIN_GUEST_MEMORY = 2 * MiB;
/**
 * Largest guest: 1 TiB keeps every guest address far inside a JS number's exact range (2^53)
 * and inside the 46 physical address bits of any x86-64 host.
 */
export const MAX_GUEST_MEMORY = 1024 * 1024 * MiB;

export class MemoryLayoutError extends Error {
  override readonly name = "MemoryLayoutError";
}

function checkMemorySize(memBytes: number): void {
  if (!Number.isSafeInteger(memBytes) || memBytes % PAGE_SIZE !== 0) {
    throw new MemoryLayoutError(`guest memory size ${memBytes} is not a whole number of 4 KiB pages`);
  }
  if (memBytes < MIN_GUEST_MEMORY || memBytes > MAX_GUEST_MEMORY) {
    throw new MemoryLayoutError(`guest memory size ${memBytes} bytes is outside [${MIN_GUEST_MEMORY}, ${MAX_GUEST_MEMORY}]`);
  }
}

/** First address past the RAM below the 32-bit MMIO hole (the "RAM top below 4 GiB"). */
export function lowRamEnd(memBytes: number): number {
  checkMemorySize(memBytes);
  return Math.min(memBytes, MMIO_HOLE_START);
}

/** The guest-physical RAM regions for `memBytes` of RAM: up to 3 GiB from 0, the rest from 4 GiB. */
export function guestRamRegions(memBytes: number): RamRegion[] {
  const low = lowRamEnd(memBytes);
  const regions: RamRegion[] = [{ guestAddr: 0, size: low }];
  if (memBytes > low) regions.push({ guestAddr: HIGH_RAM_START, size: memBytes - low });
  return regions;
}

/**
 * The e820 map for `memBytes` of RAM: conventional memory up to the EBDA, the EBDA and BIOS
 * area reserved (the MP table lives there), RAM from 1 MiB to the hole, and RAM above 4 GiB.
 */
export function e820Entries(memBytes: number): E820Entry[] {
  const low = lowRamEnd(memBytes);
  const entries: E820Entry[] = [
    { addr: 0, size: EBDA_START, type: E820_RAM },
    { addr: EBDA_START, size: HIMEM_START - EBDA_START, type: E820_RESERVED },
    { addr: HIMEM_START, size: low - HIMEM_START, type: E820_RAM },
  ];
  if (memBytes > low) entries.push({ addr: HIGH_RAM_START, size: memBytes - low, type: E820_RAM });
  return entries;
}
