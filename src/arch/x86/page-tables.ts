/**
 * Identity-mapped page tables for entering a kernel in 64-bit mode: the boot protocol needs the
 * kernel, zero page and command line mapped 1:1 (boot.rst, "64-bit Boot Protocol"). The first
 * 4 GiB are mapped with 2 MiB pages, which every x86-64 CPU supports (1 GiB pages need
 * CPUID.80000001h:EDX.Page1GB).
 */

import type { GuestMemory } from "../../memory/guest-memory.js";
import { PAGE_SIZE, PD_ADDR, PD_COUNT, PDPT_ADDR, PML4_ADDR } from "./layout.js";

/** Paging-structure entry bits (Intel SDM vol. 3, tables 4-15..4-18). */
const PRESENT = 1n;
const WRITABLE = 2n;
const PAGE_SIZE_2M = 0x80n; // PS bit in a PD entry: maps a 2 MiB page
const ENTRIES_PER_TABLE = 512;
const LARGE_PAGE = 2 * 1024 * 1024;

/** Writes PML4 -> PDPT -> PD_COUNT page directories mapping [0, 4 GiB) 1:1; returns the CR3 value. */
export function writeIdentityPageTables(mem: GuestMemory): number {
  const pml4 = new Uint8Array(PAGE_SIZE);
  new DataView(pml4.buffer).setBigUint64(0, BigInt(PDPT_ADDR) | PRESENT | WRITABLE, true);
  mem.write(PML4_ADDR, pml4);

  const pdpt = new Uint8Array(PAGE_SIZE);
  const pdptView = new DataView(pdpt.buffer);
  for (let gib = 0; gib < PD_COUNT; gib++) {
    pdptView.setBigUint64(gib * 8, BigInt(PD_ADDR + gib * PAGE_SIZE) | PRESENT | WRITABLE, true);
  }
  mem.write(PDPT_ADDR, pdpt);

  const pds = new Uint8Array(PD_COUNT * PAGE_SIZE);
  const pdView = new DataView(pds.buffer);
  for (let i = 0; i < PD_COUNT * ENTRIES_PER_TABLE; i++) {
    pdView.setBigUint64(i * 8, BigInt(i * LARGE_PAGE) | PRESENT | WRITABLE | PAGE_SIZE_2M, true);
  }
  mem.write(PD_ADDR, pds);
  return PML4_ADDR;
}
