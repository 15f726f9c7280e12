/**
 * Loads a guest kernel and everything its boot protocol needs into guest memory, and says
 * where and in which CPU mode the boot vCPU starts:
 *   bzImage            -> Linux 64-bit boot protocol (boot.rst): long mode at load + 0x200, %rsi = zero page
 *   ELF with PVH note  -> PVH (start_info.h): 32-bit protected mode, paging off, %ebx = start_info
 *   ELF64, no PVH note -> Linux 64-bit boot protocol at e_entry
 *   ELF32, entry < 1 MiB, no PVH note -> 16-bit real mode (tiny test guests)
 *   other ELF32        -> flat 32-bit protected mode at e_entry
 * Nothing is written until the whole layout is known to fit without overlaps.
 */

import type { GuestMemory } from "../memory/guest-memory.js";
import {
  BOOT_GDT_ADDR, BOOT_IDT_ADDR, BOOT_IDT_SIZE, BOOT_STACK_BOTTOM, BOOT_STACK_POINTER, CMDLINE_ADDR, CMDLINE_AREA_SIZE,
  CMDLINE_MAX_SIZE, HIMEM_START, PAGE_TABLES_END, PML4_ADDR, PVH_MEMMAP_ADDR, PVH_START_INFO_ADDR, ZERO_PAGE_ADDR, ZERO_PAGE_SIZE,
} from "../arch/x86/layout.js";
import { e820Entries, guestRamRegions, lowRamEnd } from "../arch/x86/memory-layout.js";
import { type DescriptorTable, type Segment, realModeSegment, realModeTaskRegister, unusableSegment, writeBootGdt } from "../arch/x86/gdt.js";
import { writeIdentityPageTables } from "../arch/x86/page-tables.js";
import { type AddressRange, assertDisjoint, BootLayoutError, type NamedRange } from "./boot-layout.js";
import { bzImageFootprint, isBzImage, loadBzImage, parseBzImage } from "./bzimage.js";
import { elfSegmentRanges, type ElfImage, isElf, loadElf, parseElf } from "./elf.js";
import { encodeCmdline } from "./cmdline.js";
import { placeInitrd } from "./initrd.js";
import { writeZeroPage } from "./boot-params.js";
import { PVH_MEMMAP_ENTRY_SIZE, writePvhStartInfo } from "./pvh.js";

export type EntryMode = "long64" | "protected32" | "real16";
export type KernelFormat = "bzImage" | "elf64" | "elf-pvh" | "elf32" | "elf-realmode";

export interface SegmentRegisters {
  cs: Segment; ds: Segment; es: Segment; fs: Segment; gs: Segment; ss: Segment; tr: Segment; ldt: Segment;
}

export interface BootEntry {
  mode: EntryMode;
  /** Instruction pointer; in real16 the offset from cs.base. */
  rip: number;
  rsp: number;
  /** long64: the zero page (Linux 64-bit boot protocol); else 0. */
  rsi: number;
  /** PVH: the hvm_start_info address; else 0. */
  rbx: number;
  /** long64: the PML4 address for CR3 (CR0.PG, CR4.PAE, EFER.LME/LMA go with it). */
  cr3?: number;
  gdt: DescriptorTable;
  idt: DescriptorTable;
  segments: SegmentRegisters;
  format: KernelFormat;
}

export interface LoadKernelOptions {
  initrd?: Uint8Array;
  /** Passed to bzImage, PVH and ELF64 kernels; plain ELF32 and real-mode guests have no way to receive it. */
  cmdline: string;
  memBytes: number;
}

export class KernelFormatError extends Error {
  override readonly name = "KernelFormatError";
}

const hex = (n: number) => `0x${n.toString(16)}`;

/** Loads `kernel` (bzImage or ELF) with its initrd and command line; returns the boot vCPU's entry state. */
export function loadKernel(mem: GuestMemory, kernel: Uint8Array, opts: LoadKernelOptions): BootEntry {
  checkMemoryMatches(mem, opts.memBytes);
  if (isElf(kernel)) return loadElfKernel(mem, kernel, opts);
  if (isBzImage(kernel)) return loadBzImageKernel(mem, kernel, opts);
  const head = [...kernel.subarray(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join(" ");
  throw new KernelFormatError(
    `not a Linux kernel: no ELF magic and no bzImage 'HdrS' signature (${kernel.length} bytes, starting ${head || "<empty>"})`,
  );
}

/** The e820 map is computed from memBytes; it must describe the memory actually given. */
function checkMemoryMatches(mem: GuestMemory, memBytes: number): void {
  const regions = guestRamRegions(memBytes);
  if (mem.size !== memBytes || !regions.every((r) => mem.contains(r.guestAddr, r.size))) {
    throw new BootLayoutError(`guest memory (${mem.size} bytes) does not have the layout of a ${memBytes}-byte guest`);
  }
}

// Boot structures each entry path writes, as named ranges for the overlap check.
const gdtRange = (): NamedRange => ({ name: "boot GDT/IDT", start: BOOT_GDT_ADDR, end: BOOT_IDT_ADDR + BOOT_IDT_SIZE });
const stackRange = (): NamedRange => ({ name: "boot stack", start: BOOT_STACK_BOTTOM, end: BOOT_STACK_POINTER + 16 });
const zeroPageRange = (): NamedRange => ({ name: "zero page", start: ZERO_PAGE_ADDR, end: ZERO_PAGE_ADDR + ZERO_PAGE_SIZE });
const pageTableRange = (): NamedRange => ({ name: "page tables", start: PML4_ADDR, end: PAGE_TABLES_END });
const cmdlineRange = (bytes: Uint8Array): NamedRange => ({ name: "command line", start: CMDLINE_ADDR, end: CMDLINE_ADDR + bytes.length });
const pvhRange = (memmapEntries: number): NamedRange => ({ name: "PVH start_info", start: PVH_START_INFO_ADDR, end: PVH_MEMMAP_ADDR + memmapEntries * PVH_MEMMAP_ENTRY_SIZE });

function long64Segments(boot: ReturnType<typeof writeBootGdt>): SegmentRegisters {
  const d = boot.data;
  return { cs: boot.code64, ds: d, es: d, fs: d, gs: d, ss: d, tr: boot.tss, ldt: unusableSegment() };
}

function protected32Segments(boot: ReturnType<typeof writeBootGdt>): SegmentRegisters {
  const d = boot.data;
  return { cs: boot.code32, ds: d, es: d, fs: d, gs: d, ss: d, tr: boot.tss, ldt: unusableSegment() };
}

interface PlacedInitrd {
  addr: number;
  size: number;
  data: Uint8Array;
}

/** Places the initrd (if any) clear of `occupied` below `top`. */
function planInitrd(data: Uint8Array | undefined, top: number, occupied: readonly AddressRange[]): PlacedInitrd | undefined {
  if (!data) return undefined;
  return { addr: placeInitrd({ size: data.length, top, occupied }), size: data.length, data };
}

function loadBzImageKernel(mem: GuestMemory, file: Uint8Array, opts: LoadKernelOptions): BootEntry {
  const image = parseBzImage(file);
  const cmdlineCapacity = Math.min(image.header.cmdlineSize + 1, CMDLINE_AREA_SIZE);
  const cmdline = encodeCmdline(opts.cmdline, cmdlineCapacity);
  const initrdTop = Math.min(image.header.initrdAddrMax + 1, lowRamEnd(opts.memBytes));
  const initrd = planInitrd(opts.initrd, initrdTop, [bzImageFootprint(image)]);
  const kernel = loadBzImage(mem, image);
  if (initrd) mem.write(initrd.addr, initrd.data);
  mem.write(CMDLINE_ADDR, cmdline);
  writeZeroPage(mem, { setupHeader: image.setupHeaderBytes, cmdlineAddr: CMDLINE_ADDR, cmdlineCapacity, initrd, e820: e820Entries(opts.memBytes) });
  const boot = writeBootGdt(mem);
  return {
    mode: "long64", rip: kernel.entry64, rsp: BOOT_STACK_POINTER, rsi: ZERO_PAGE_ADDR, rbx: 0, cr3: writeIdentityPageTables(mem),
    gdt: boot.gdt, idt: boot.idt, segments: long64Segments(boot), format: "bzImage",
  };
}

function kernelFormatOf(image: ElfImage): KernelFormat {
  if (image.pvhEntry !== undefined) return "elf-pvh";
  if (image.elfClass === 64) return "elf64";
  return image.entry < HIMEM_START ? "elf-realmode" : "elf32";
}

function loadElfKernel(mem: GuestMemory, file: Uint8Array, opts: LoadKernelOptions): BootEntry {
  const image = parseElf(file);
  const format = kernelFormatOf(image);
  const entry = format === "elf-pvh" ? image.pvhEntry! : image.entry;
  const segments = elfSegmentRanges(image);
  if (!segments.some((s) => entry >= s.start && entry < s.end)) {
    throw new KernelFormatError(`${format === "elf-pvh" ? "PVH entry" : "e_entry"} ${hex(entry)} lies outside every loadable segment`);
  }
  const kernelRanges = segments.map((s, i): NamedRange => ({ ...s, name: `kernel segment ${i}` }));
  const speaksLinux = format === "elf-pvh" || format === "elf64";
  if (!speaksLinux && opts.initrd) {
    throw new KernelFormatError(`an initrd needs a Linux boot protocol (bzImage, PVH note or ELF64); this ${format} guest has none`);
  }
  const cmdline = speaksLinux ? encodeCmdline(opts.cmdline, CMDLINE_MAX_SIZE) : undefined;
  const e820 = e820Entries(opts.memBytes);

  const structures: NamedRange[] = [stackRange()];
  if (format !== "elf-realmode") structures.push(gdtRange());
  if (cmdline) structures.push(cmdlineRange(cmdline));
  if (format === "elf-pvh") structures.push(pvhRange(e820.length));
  if (format === "elf64") structures.push(zeroPageRange(), pageTableRange());
  assertDisjoint([...kernelRanges, ...structures]);
  const initrd = planInitrd(opts.initrd, lowRamEnd(opts.memBytes), segments);

  loadElf(mem, file, image);
  if (initrd) mem.write(initrd.addr, initrd.data);
  if (cmdline) mem.write(CMDLINE_ADDR, cmdline);

  if (format === "elf-realmode") return realModeEntry(entry);
  const boot = writeBootGdt(mem);
  const common = { rsp: BOOT_STACK_POINTER, gdt: boot.gdt, idt: boot.idt, format };
  if (format === "elf64") {
    writeZeroPage(mem, { cmdlineAddr: CMDLINE_ADDR, cmdlineCapacity: CMDLINE_MAX_SIZE, initrd, e820 });
    return { ...common, mode: "long64", rip: entry, rsi: ZERO_PAGE_ADDR, rbx: 0, cr3: writeIdentityPageTables(mem), segments: long64Segments(boot) };
  }
  const rbx = format === "elf-pvh" ? writePvhStartInfo(mem, { cmdlineAddr: CMDLINE_ADDR, initrd, memmap: e820 }) : 0;
  return { ...common, mode: "protected32", rip: entry, rsi: 0, rbx, segments: protected32Segments(boot) };
}

/** Real mode: CS = entry >> 4 so IP = entry & 0xf; data and stack segments at 0 (absolute addresses < 64 KiB work). */
function realModeEntry(entry: number): BootEntry {
  const cs = realModeSegment(entry >>> 4, "code");
  const data = realModeSegment(0, "data");
  return {
    mode: "real16", rip: entry - cs.base, rsp: BOOT_STACK_POINTER, rsi: 0, rbx: 0,
    // Real-mode descriptor-table registers as at vCPU reset (base 0, limit 0xffff; SDM 9.1.1).
    gdt: { base: 0, limit: 0xffff }, idt: { base: 0, limit: 0xffff },
    segments: { cs, ds: data, es: data, fs: data, gs: data, ss: data, tr: realModeTaskRegister(), ldt: unusableSegment() },
    format: "elf-realmode",
  };
}
