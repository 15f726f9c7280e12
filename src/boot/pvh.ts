/**
 * The PVH start-of-day structure handed to the kernel in %ebx: struct hvm_start_info with a
 * module list (the initrd) and a memory map. Layout: Xen xen/include/public/arch-x86/hvm/start_info.h
 * (version 1 adds memmap_paddr/memmap_entries, which Linux arch/x86/platform/pvh/enlighten.c reads
 * instead of asking a hypervisor).
 */

import type { GuestMemory } from "../memory/guest-memory.js";
import { PVH_MEMMAP_ADDR, PVH_MEMMAP_MAX_ENTRIES, PVH_MODLIST_ADDR, PVH_START_INFO_ADDR } from "../arch/x86/layout.js";
import type { E820Entry } from "../arch/x86/memory-layout.js";

export class PvhError extends Error {
  override readonly name = "PvhError";
}

/** XEN_HVM_START_MAGIC_VALUE: "xEn3" with the 0x80 bit of the "E" set. */
export const XEN_HVM_START_MAGIC = 0x336ec578;
const START_INFO_VERSION = 1;
const START_INFO_SIZE = 56;
const MODLIST_ENTRY_SIZE = 32;
/** sizeof(struct hvm_memmap_table_entry). */
export const PVH_MEMMAP_ENTRY_SIZE = 24;

/** hvm_start_info field offsets (start_info.h diagram). */
export const SI_MAGIC = 0;
export const SI_VERSION = 4;
export const SI_NR_MODULES = 12;
export const SI_MODLIST_PADDR = 16;
export const SI_CMDLINE_PADDR = 24;
export const SI_MEMMAP_PADDR = 40;
export const SI_MEMMAP_ENTRIES = 48;

export interface PvhStartInfoConfig {
  cmdlineAddr: number;
  initrd?: { addr: number; size: number };
  /** The memory map; XEN_HVM_MEMMAP_TYPE_* values equal the e820 types. */
  memmap: readonly E820Entry[];
}

/** Writes start_info, module list and memory map at their layout addresses; returns the start_info address for %ebx. */
export function writePvhStartInfo(mem: GuestMemory, cfg: PvhStartInfoConfig): number {
  if (cfg.memmap.length > PVH_MEMMAP_MAX_ENTRIES) {
    throw new PvhError(`${cfg.memmap.length} memory map entries do not fit the PVH memmap area (max ${PVH_MEMMAP_MAX_ENTRIES})`);
  }
  const info = new DataView(new ArrayBuffer(START_INFO_SIZE));
  info.setUint32(SI_MAGIC, XEN_HVM_START_MAGIC, true);
  info.setUint32(SI_VERSION, START_INFO_VERSION, true);
  info.setBigUint64(SI_CMDLINE_PADDR, BigInt(cfg.cmdlineAddr), true);
  info.setBigUint64(SI_MEMMAP_PADDR, BigInt(PVH_MEMMAP_ADDR), true);
  info.setUint32(SI_MEMMAP_ENTRIES, cfg.memmap.length, true);

  if (cfg.initrd) {
    // struct hvm_modlist_entry: paddr, size, cmdline_paddr (0: none), reserved.
    const mod = new DataView(new ArrayBuffer(MODLIST_ENTRY_SIZE));
    mod.setBigUint64(0, BigInt(cfg.initrd.addr), true);
    mod.setBigUint64(8, BigInt(cfg.initrd.size), true);
    mem.write(PVH_MODLIST_ADDR, new Uint8Array(mod.buffer));
    info.setUint32(SI_NR_MODULES, 1, true);
    info.setBigUint64(SI_MODLIST_PADDR, BigInt(PVH_MODLIST_ADDR), true);
  }

  // struct hvm_memmap_table_entry: addr, size, type, reserved.
  const map = new DataView(new ArrayBuffer(cfg.memmap.length * PVH_MEMMAP_ENTRY_SIZE));
  cfg.memmap.forEach((e, i) => {
    map.setBigUint64(i * PVH_MEMMAP_ENTRY_SIZE, BigInt(e.addr), true);
    map.setBigUint64(i * PVH_MEMMAP_ENTRY_SIZE + 8, BigInt(e.size), true);
    map.setUint32(i * PVH_MEMMAP_ENTRY_SIZE + 16, e.type, true);
  });
  mem.write(PVH_MEMMAP_ADDR, new Uint8Array(map.buffer));
  mem.write(PVH_START_INFO_ADDR, new Uint8Array(info.buffer));
  return PVH_START_INFO_ADDR;
}
