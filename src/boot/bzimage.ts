/**
 * Linux bzImage: parse and check the real-mode setup header, load the protected-mode kernel.
 * Offsets and rules: Documentation/arch/x86/boot.rst ("The real-mode kernel header",
 * "Details of header fields", "64-bit Boot Protocol").
 */

import type { GuestMemory } from "../memory/guest-memory.js";
import { KERNEL_LOAD_ADDR } from "../arch/x86/layout.js";
import type { AddressRange } from "./boot-layout.js";

export class BzImageError extends Error {
  override readonly name = "BzImageError";
}

/** Setup header offsets in the file (and in boot_params; the header sits at 0x1f1 in both). */
export const SETUP_HEADER_START = 0x1f1;
const OFF_SETUP_SECTS = 0x1f1;
const OFF_SYSSIZE = 0x1f4;
const OFF_BOOT_FLAG = 0x1fe;
const OFF_JUMP = 0x200; // 2-byte short jump; its displacement byte (0x201) gives the header end
const OFF_HEADER = 0x202;
const OFF_VERSION = 0x206;
const OFF_LOADFLAGS = 0x211;
const OFF_CODE32_START = 0x214;
const OFF_INITRD_ADDR_MAX = 0x22c;
const OFF_KERNEL_ALIGNMENT = 0x230;
const OFF_RELOCATABLE = 0x234;
const OFF_XLOADFLAGS = 0x236;
const OFF_CMDLINE_SIZE = 0x238;
const OFF_PREF_ADDRESS = 0x258;
const OFF_INIT_SIZE = 0x260;

const HDRS_MAGIC = 0x53726448; // "HdrS"
const BOOT_FLAG = 0xaa55;
/** 2.06 is the first protocol with cmdline_size; older kernels are out of scope. */
const MIN_VERSION = 0x0206;
/** 2.10 added pref_address and init_size; 2.12 added xloadflags. */
const VERSION_PREF_ADDRESS = 0x020a;
const VERSION_XLOADFLAGS = 0x020c;
/** setup_sects == 0 means 4 (boot.rst, setup_sects). */
const DEFAULT_SETUP_SECTS = 4;
const SECTOR = 512;

export const LOADED_HIGH = 0x01;
export const CAN_USE_HEAP = 0x80;
export const XLF_KERNEL_64 = 0x01;
/** The 64-bit entry point is 0x200 bytes into the protected-mode kernel (boot.rst, 64-bit Boot Protocol). */
export const KERNEL_64_ENTRY_OFFSET = 0x200;

export interface SetupHeader {
  version: number;
  setupSects: number;
  loadflags: number;
  xloadflags: number;
  code32Start: number;
  /** Highest address the initrd may occupy (inclusive). */
  initrdAddrMax: number;
  kernelAlignment: number;
  relocatable: boolean;
  /** Maximum command line length without the NUL. */
  cmdlineSize: number;
  prefAddress: number;
  /** Memory the kernel needs from its (aligned) run address while it initialises. */
  initSize: number;
}

export interface BzImage {
  header: SetupHeader;
  /** File bytes [0x1f1, header end): what the boot loader copies into boot_params.hdr. */
  setupHeaderBytes: Uint8Array;
  /** The protected-mode kernel, loaded at 1 MiB. */
  payload: Uint8Array;
}

export interface LoadedBzImage extends AddressRange {
  /** Where the 64-bit boot protocol enters: load address + 0x200. */
  entry64: number;
}

/** True when the file carries the "HdrS" setup header signature. */
export function isBzImage(file: Uint8Array): boolean {
  return file.length >= OFF_HEADER + 4 && view(file).getUint32(OFF_HEADER, true) === HDRS_MAGIC;
}

function view(file: Uint8Array): DataView {
  return new DataView(file.buffer, file.byteOffset, file.byteLength);
}

const hex = (n: number) => `0x${n.toString(16)}`;

/** Parses and validates a bzImage; throws BzImageError naming the first problem. */
export function parseBzImage(file: Uint8Array): BzImage {
  if (!isBzImage(file)) {
    throw new BzImageError(file.length < OFF_HEADER + 4
      ? `file of ${file.length} bytes is too short to hold a bzImage setup header`
      : `no "HdrS" signature at offset ${hex(OFF_HEADER)}: not a bzImage`);
  }
  const v = view(file);
  if (file.length < OFF_VERSION + 2) throw new BzImageError("bzImage is truncated inside its setup header");
  const version = v.getUint16(OFF_VERSION, true);
  const versionText = `${version >> 8}.${(version & 0xff).toString().padStart(2, "0")}`;
  if (version < MIN_VERSION) throw new BzImageError(`boot protocol ${versionText} is older than the 2.06 petasan needs`);

  const headerEnd = OFF_HEADER + file[OFF_JUMP + 1];
  const fieldsEnd = version >= VERSION_PREF_ADDRESS ? OFF_INIT_SIZE + 4 : OFF_CMDLINE_SIZE + 4;
  if (headerEnd < fieldsEnd) throw new BzImageError(`setup header ends at ${hex(headerEnd)}, too short for boot protocol ${versionText}`);
  if (file.length < headerEnd) throw new BzImageError(`bzImage of ${file.length} bytes is truncated inside its setup header (ends at ${hex(headerEnd)})`);
  if (v.getUint16(OFF_BOOT_FLAG, true) !== BOOT_FLAG) throw new BzImageError(`boot_flag is ${hex(v.getUint16(OFF_BOOT_FLAG, true))}, not 0xaa55`);

  const setupSects = file[OFF_SETUP_SECTS] || DEFAULT_SETUP_SECTS;
  const setupSize = (setupSects + 1) * SECTOR;
  const syssize = v.getUint32(OFF_SYSSIZE, true) * 16;
  if (file.length <= setupSize) throw new BzImageError(`bzImage of ${file.length} bytes ends inside its ${setupSize}-byte real-mode setup`);
  if (syssize > file.length - setupSize) {
    throw new BzImageError(`bzImage is truncated: syssize announces ${syssize} bytes of kernel, the file holds ${file.length - setupSize}`);
  }

  const prefAddressBig = version >= VERSION_PREF_ADDRESS ? v.getBigUint64(OFF_PREF_ADDRESS, true) : 0n;
  if (prefAddressBig > BigInt(Number.MAX_SAFE_INTEGER)) throw new BzImageError(`pref_address ${hex(Number(prefAddressBig))} is out of range`);
  const header: SetupHeader = {
    version,
    setupSects,
    loadflags: file[OFF_LOADFLAGS],
    xloadflags: version >= VERSION_XLOADFLAGS ? v.getUint16(OFF_XLOADFLAGS, true) : 0,
    code32Start: v.getUint32(OFF_CODE32_START, true),
    initrdAddrMax: v.getUint32(OFF_INITRD_ADDR_MAX, true),
    kernelAlignment: v.getUint32(OFF_KERNEL_ALIGNMENT, true),
    relocatable: file[OFF_RELOCATABLE] !== 0,
    cmdlineSize: v.getUint32(OFF_CMDLINE_SIZE, true),
    prefAddress: Number(prefAddressBig),
    initSize: version >= VERSION_PREF_ADDRESS ? v.getUint32(OFF_INIT_SIZE, true) : 0,
  };
  if (!(header.loadflags & LOADED_HIGH)) throw new BzImageError("kernel is a zImage (LOADED_HIGH clear): it must load below 1 MiB, which petasan does not support");
  if (!(header.xloadflags & XLF_KERNEL_64)) throw new BzImageError("kernel has no 64-bit entry point (XLF_KERNEL_64 clear in xloadflags)");

  return {
    header,
    setupHeaderBytes: file.slice(SETUP_HEADER_START, headerEnd),
    payload: file.subarray(setupSize, syssize > 0 ? setupSize + syssize : file.length),
  };
}

/**
 * Where the kernel goes when loaded at `loadAddr` (1 MiB, code32_start's default). The range
 * also covers what the kernel claims while decompressing: init_size bytes from its run
 * address, which is at least pref_address (boot.rst, init_size and pref_address).
 */
export function bzImageFootprint(image: BzImage, loadAddr = KERNEL_LOAD_ADDR): LoadedBzImage {
  const runAddr = Math.max(loadAddr, image.header.prefAddress);
  const end = Math.max(loadAddr + image.payload.length, runAddr + image.header.initSize);
  return { start: loadAddr, end, entry64: loadAddr + KERNEL_64_ENTRY_OFFSET };
}

/** Copies the protected-mode kernel to `loadAddr` after checking its whole footprint is guest RAM. */
export function loadBzImage(mem: GuestMemory, image: BzImage, loadAddr = KERNEL_LOAD_ADDR): LoadedBzImage {
  const footprint = bzImageFootprint(image, loadAddr);
  if (!mem.contains(footprint.start, footprint.end - footprint.start)) {
    throw new BzImageError(`kernel needs guest RAM over [${hex(footprint.start)}, ${hex(footprint.end)}) (payload plus init_size), which this VM lacks`);
  }
  mem.write(loadAddr, image.payload);
  return footprint;
}
