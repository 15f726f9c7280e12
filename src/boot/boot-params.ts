/**
 * The Linux "zero page" (struct boot_params) for 64-bit entry, for a bzImage (its own setup
 * header copied in) and for an ELF vmlinux (a minimal header made up here).
 * Offsets: Documentation/arch/x86/zero-page.rst and boot.rst; arch/x86/include/uapi/asm/bootparam.h.
 */

import type { GuestMemory } from "../memory/guest-memory.js";
import { ZERO_PAGE_ADDR, ZERO_PAGE_SIZE } from "../arch/x86/layout.js";
import type { E820Entry } from "../arch/x86/memory-layout.js";
import { CAN_USE_HEAP, LOADED_HIGH, SETUP_HEADER_START } from "./bzimage.js";

export class BootParamsError extends Error {
  override readonly name = "BootParamsError";
}

/** boot_params offsets (zero-page.rst). */
export const BP_EXT_RAMDISK_IMAGE = 0x0c0;
export const BP_EXT_RAMDISK_SIZE = 0x0c4;
export const BP_EXT_CMD_LINE_PTR = 0x0c8;
export const BP_E820_ENTRIES = 0x1e8;
export const BP_E820_TABLE = 0x2d0;
/** The setup header may extend at most to edd_mbr_sig_buffer at 0x290 (bootparam.h _pad7). */
const SETUP_HEADER_LIMIT = 0x290;
/** E820_MAX_ENTRIES_ZEROPAGE (arch/x86/include/uapi/asm/setup_data.h / bootparam.h). */
export const E820_MAX_ZERO_PAGE_ENTRIES = 128;
/** struct boot_e820_entry: u64 addr, u64 size, u32 type, packed. */
const E820_ENTRY_SIZE = 20;

/** Setup header offsets inside boot_params (boot.rst, "The real-mode kernel header"). */
export const HDR_BOOT_FLAG = 0x1fe;
export const HDR_HEADER = 0x202;
export const HDR_TYPE_OF_LOADER = 0x210;
export const HDR_LOADFLAGS = 0x211;
export const HDR_RAMDISK_IMAGE = 0x218;
export const HDR_RAMDISK_SIZE = 0x21c;
export const HDR_HEAP_END_PTR = 0x224;
export const HDR_CMD_LINE_PTR = 0x228;
export const HDR_KERNEL_ALIGNMENT = 0x230;
export const HDR_CMDLINE_SIZE = 0x238;

/** boot.rst type_of_loader: 0xff = a boot loader without an assigned id. */
const LOADER_UNDEFINED = 0xff;
/** boot.rst sample configuration: setup heap ends at 0xe000 from the real-mode base; the field holds that minus 0x200. */
const HEAP_END_PTR = 0xe000 - 0x200;
const BOOT_FLAG = 0xaa55;
const HDRS_MAGIC = 0x53726448;
/** A made-up header needs a non-zero kernel_alignment; 16 MiB as Firecracker's configure_64bit_boot uses. */
const ELF_KERNEL_ALIGNMENT = 0x1000000;

export interface ZeroPageConfig {
  /** Setup header bytes from a bzImage (file offsets [0x1f1, header end)); absent for an ELF vmlinux. */
  setupHeader?: Uint8Array;
  cmdlineAddr: number;
  /** Command line buffer size announced for a made-up header (NUL included). */
  cmdlineCapacity: number;
  initrd?: { addr: number; size: number };
  e820: readonly E820Entry[];
}

/** Splits a value below 2^64 into its low and high 32 bits (for the ext_* fields). */
const lo32 = (n: number) => n % 2 ** 32;
const hi32 = (n: number) => Math.floor(n / 2 ** 32);

/** Builds the 4 KiB zero page. */
export function buildZeroPage(cfg: ZeroPageConfig): Uint8Array {
  if (cfg.e820.length > E820_MAX_ZERO_PAGE_ENTRIES) {
    throw new BootParamsError(`${cfg.e820.length} e820 entries do not fit the zero page (max ${E820_MAX_ZERO_PAGE_ENTRIES})`);
  }
  const page = new Uint8Array(ZERO_PAGE_SIZE);
  const v = new DataView(page.buffer);

  if (cfg.setupHeader) {
    page.set(cfg.setupHeader.subarray(0, SETUP_HEADER_LIMIT - SETUP_HEADER_START), SETUP_HEADER_START);
  } else {
    v.setUint16(HDR_BOOT_FLAG, BOOT_FLAG, true);
    v.setUint32(HDR_HEADER, HDRS_MAGIC, true);
    v.setUint32(HDR_KERNEL_ALIGNMENT, ELF_KERNEL_ALIGNMENT, true);
    v.setUint32(HDR_CMDLINE_SIZE, cfg.cmdlineCapacity - 1, true);
  }
  page[HDR_TYPE_OF_LOADER] = LOADER_UNDEFINED;
  page[HDR_LOADFLAGS] |= LOADED_HIGH | CAN_USE_HEAP;
  v.setUint16(HDR_HEAP_END_PTR, HEAP_END_PTR, true);
  v.setUint32(HDR_CMD_LINE_PTR, lo32(cfg.cmdlineAddr), true);
  v.setUint32(BP_EXT_CMD_LINE_PTR, hi32(cfg.cmdlineAddr), true);
  if (cfg.initrd) {
    v.setUint32(HDR_RAMDISK_IMAGE, lo32(cfg.initrd.addr), true);
    v.setUint32(HDR_RAMDISK_SIZE, lo32(cfg.initrd.size), true);
    v.setUint32(BP_EXT_RAMDISK_IMAGE, hi32(cfg.initrd.addr), true);
    v.setUint32(BP_EXT_RAMDISK_SIZE, hi32(cfg.initrd.size), true);
  }

  page[BP_E820_ENTRIES] = cfg.e820.length;
  cfg.e820.forEach((e, i) => {
    const off = BP_E820_TABLE + i * E820_ENTRY_SIZE;
    v.setBigUint64(off, BigInt(e.addr), true);
    v.setBigUint64(off + 8, BigInt(e.size), true);
    v.setUint32(off + 16, e.type, true);
  });
  return page;
}

/** Builds the zero page and writes it at `addr` (ZERO_PAGE_ADDR); rsi points there at entry. */
export function writeZeroPage(mem: GuestMemory, cfg: ZeroPageConfig, addr = ZERO_PAGE_ADDR): void {
  mem.write(addr, buildZeroPage(cfg));
}
