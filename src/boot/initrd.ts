/**
 * Initial ramdisk placement: page-aligned, as high as possible below the limit, clear of the
 * kernel. High placement is what boot loaders do (boot.rst, "ramdisk_image": "as high as
 * possible" below initrd_addr_max) and leaves the kernel's decompression room untouched.
 */

import { HIMEM_START, PAGE_SIZE } from "../arch/x86/layout.js";
import type { AddressRange } from "./boot-layout.js";

export class InitrdError extends Error {
  override readonly name = "InitrdError";
}

export interface InitrdPlacementRequest {
  size: number;
  /** First address the initrd may not reach: min(initrd_addr_max + 1, RAM top below 4 GiB). */
  top: number;
  /** Ranges the initrd must not overlap (kernel segments, its init_size footprint). */
  occupied: readonly AddressRange[];
  /** Lowest address allowed; default 1 MiB keeps the low boot structures clear. */
  floor?: number;
}

const alignDown = (n: number) => Math.floor(n / PAGE_SIZE) * PAGE_SIZE;
const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

/** Returns the guest address for the initrd, or throws InitrdError when it cannot fit. */
export function placeInitrd(req: InitrdPlacementRequest): number {
  const floor = req.floor ?? HIMEM_START;
  if (!Number.isSafeInteger(req.size) || req.size <= 0) throw new InitrdError(`initrd size ${req.size} is not a positive byte count`);
  let addr = alignDown(req.top - req.size);
  for (;;) {
    if (addr < floor) {
      throw new InitrdError(`initrd of ${mib(req.size)} does not fit in guest RAM between ${mib(floor)} and ${mib(req.top)} beside the kernel`);
    }
    const clash = req.occupied.find((r) => addr < r.end && r.start < addr + req.size);
    if (!clash) return addr;
    addr = alignDown(clash.start - req.size);
  }
}

