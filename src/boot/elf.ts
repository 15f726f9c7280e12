/**
 * ELF kernels and test guests: little-endian ELF32 (i386) and ELF64 (x86-64) executables,
 * loaded by PT_LOAD segment at p_paddr. Layouts: System V gABI ("ELF Header", "Program
 * Header", "Note Section"); the PVH entry note: Xen public/elfnote.h (XEN_ELFNOTE_PHYS32_ENTRY),
 * emitted by Linux arch/x86/platform/pvh/head.S.
 */

import type { GuestMemory } from "../memory/guest-memory.js";
import type { AddressRange } from "./boot-layout.js";

export class ElfError extends Error {
  override readonly name = "ElfError";
}

const ELF_MAGIC = 0x464c457f; // "\x7fELF" read little-endian
const ELFCLASS32 = 1;
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const EV_CURRENT = 1;
const ET_EXEC = 2;
const EM_386 = 3;
const EM_X86_64 = 62;
const PT_LOAD = 1;
const PT_NOTE = 4;
/** e_phnum == PN_XNUM means the count lives in section 0; no kernel or test guest needs that. */
const PN_XNUM = 0xffff;

/** Xen ELF note carrying the 32-bit physical PVH entry point. */
export const XEN_ELFNOTE_PHYS32_ENTRY = 18;
const XEN_NOTE_OWNER = "Xen";

/** Field offsets and sizes for the two classes (gABI). */
const CLASS_LAYOUT = {
  32: { ehsize: 52, phentsize: 32, entry: 24, phoff: 28, phentsizeOff: 42, phnumOff: 44, pType: 0, pOffset: 4, pPaddr: 12, pFilesz: 16, pMemsz: 20 },
  64: { ehsize: 64, phentsize: 56, entry: 24, phoff: 32, phentsizeOff: 54, phnumOff: 56, pType: 0, pOffset: 8, pPaddr: 24, pFilesz: 32, pMemsz: 40 },
} as const;

export interface ElfSegment {
  fileOffset: number;
  paddr: number;
  filesz: number;
  memsz: number;
}

export interface ElfImage {
  elfClass: 32 | 64;
  entry: number;
  /** PT_LOAD segments with a non-zero memory size. */
  segments: ElfSegment[];
  /** The PVH 32-bit entry from a Xen PHYS32_ENTRY note, when the image has one. */
  pvhEntry?: number;
}

/** True when the file starts with the ELF magic. */
export function isElf(file: Uint8Array): boolean {
  return file.length >= 4 && new DataView(file.buffer, file.byteOffset, 4).getUint32(0, true) === ELF_MAGIC;
}

const hex = (n: number) => `0x${n.toString(16)}`;

/** Reads an address-sized field as an exact number, or throws. */
function readWord(v: DataView, off: number, elfClass: 32 | 64, what: string): number {
  if (elfClass === 32) return v.getUint32(off, true);
  const big = v.getBigUint64(off, true);
  if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new ElfError(`${what} ${hex(Number(big))} is beyond any guest address`);
  return Number(big);
}

/** Parses and validates an ELF executable; throws ElfError naming the first problem. */
export function parseElf(file: Uint8Array): ElfImage {
  if (!isElf(file)) throw new ElfError("no ELF magic (\\x7fELF) at offset 0");
  if (file.length < CLASS_LAYOUT[32].ehsize) throw new ElfError(`file of ${file.length} bytes is too short for an ELF header`);
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const classByte = file[4];
  if (classByte !== ELFCLASS32 && classByte !== ELFCLASS64) throw new ElfError(`unknown ELF class ${classByte}`);
  const elfClass = classByte === ELFCLASS64 ? 64 : 32;
  const L = CLASS_LAYOUT[elfClass];
  if (file.length < L.ehsize) throw new ElfError(`file of ${file.length} bytes is too short for an ELF${elfClass} header`);
  if (file[5] !== ELFDATA2LSB) throw new ElfError("ELF file is not little-endian");
  if (file[6] !== EV_CURRENT) throw new ElfError(`unknown ELF version ${file[6]}`);
  const type = v.getUint16(16, true);
  if (type !== ET_EXEC) throw new ElfError(`ELF type ${type} is not an executable (ET_EXEC)`);
  const machine = v.getUint16(18, true);
  const wantMachine = elfClass === 64 ? EM_X86_64 : EM_386;
  if (machine !== wantMachine) throw new ElfError(`ELF${elfClass} machine ${machine} is not ${elfClass === 64 ? "x86-64 (62)" : "i386 (3)"}`);

  const entry = readWord(v, L.entry, elfClass, "e_entry");
  const phoff = readWord(v, L.phoff, elfClass, "e_phoff");
  const phentsize = v.getUint16(L.phentsizeOff, true);
  const phnum = v.getUint16(L.phnumOff, true);
  if (phnum === 0 || phnum === PN_XNUM) throw new ElfError(`bad program header count e_phnum=${phnum}`);
  if (phentsize !== L.phentsize) throw new ElfError(`e_phentsize ${phentsize} is not ${L.phentsize} for ELF${elfClass}`);
  if (phoff + phnum * phentsize > file.length) {
    throw new ElfError(`program header table [${hex(phoff)}, ${hex(phoff + phnum * phentsize)}) runs past the end of the ${file.length}-byte file`);
  }

  const segments: ElfSegment[] = [];
  let pvhEntry: number | undefined;
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    const pType = v.getUint32(ph + L.pType, true);
    if (pType !== PT_LOAD && pType !== PT_NOTE) continue;
    const seg = {
      fileOffset: readWord(v, ph + L.pOffset, elfClass, `segment ${i} p_offset`),
      paddr: readWord(v, ph + L.pPaddr, elfClass, `segment ${i} p_paddr`),
      filesz: readWord(v, ph + L.pFilesz, elfClass, `segment ${i} p_filesz`),
      memsz: readWord(v, ph + L.pMemsz, elfClass, `segment ${i} p_memsz`),
    };
    if (seg.fileOffset + seg.filesz > file.length) {
      throw new ElfError(`segment ${i} [file ${hex(seg.fileOffset)}+${hex(seg.filesz)}] runs past the end of the ${file.length}-byte file`);
    }
    if (pType === PT_NOTE) {
      pvhEntry ??= findPvhEntry(file.subarray(seg.fileOffset, seg.fileOffset + seg.filesz), i);
      continue;
    }
    if (seg.filesz > seg.memsz) throw new ElfError(`segment ${i} has p_filesz ${hex(seg.filesz)} > p_memsz ${hex(seg.memsz)}`);
    if (!Number.isSafeInteger(seg.paddr + seg.memsz)) throw new ElfError(`segment ${i} p_paddr+p_memsz overflows`);
    if (seg.memsz > 0) segments.push(seg);
  }
  if (segments.length === 0) throw new ElfError("ELF file has no loadable (PT_LOAD) segment");
  return { elfClass, entry, segments, pvhEntry };
}

/** Walks the notes of one PT_NOTE segment (gABI "Note Section": namesz, descsz, type, name, desc; 4-byte aligned). */
function findPvhEntry(notes: Uint8Array, segmentIndex: number): number | undefined {
  const v = new DataView(notes.buffer, notes.byteOffset, notes.byteLength);
  const align4 = (n: number) => (n + 3) & ~3;
  let off = 0;
  while (off + 12 <= notes.length) {
    const namesz = v.getUint32(off, true);
    const descsz = v.getUint32(off + 4, true);
    const type = v.getUint32(off + 8, true);
    const nameOff = off + 12;
    const descOff = nameOff + align4(namesz);
    const next = descOff + align4(descsz);
    if (namesz > notes.length || descsz > notes.length || next > notes.length) {
      throw new ElfError(`note at offset ${hex(off)} of PT_NOTE segment ${segmentIndex} runs past the segment`);
    }
    const name = new TextDecoder().decode(notes.subarray(nameOff, nameOff + namesz)).replace(/\0+$/, "");
    if (name === XEN_NOTE_OWNER && type === XEN_ELFNOTE_PHYS32_ENTRY) {
      // Linux emits a pointer-sized value (8 bytes for x86-64), Xen's own spec a 32-bit one.
      if (descsz !== 4 && descsz !== 8) throw new ElfError(`Xen PHYS32_ENTRY note has a ${descsz}-byte value, expected 4 or 8`);
      const entry = descsz === 4 ? v.getUint32(descOff, true) : Number(v.getBigUint64(descOff, true));
      if (!(entry < 2 ** 32)) throw new ElfError(`PVH entry ${hex(entry)} is not a 32-bit address`);
      return entry;
    }
    off = next;
  }
  return undefined;
}

/** The guest-physical range of each loadable segment, in program header order. */
export function elfSegmentRanges(image: ElfImage): AddressRange[] {
  return image.segments.map((s) => ({ start: s.paddr, end: s.paddr + s.memsz }));
}

/**
 * Copies each PT_LOAD segment to p_paddr and zeroes its bss tail, after checking that every
 * segment lies inside guest RAM (so a bad image writes nothing).
 */
export function loadElf(mem: GuestMemory, file: Uint8Array, image: ElfImage): void {
  image.segments.forEach((s, i) => {
    if (!mem.contains(s.paddr, s.memsz)) {
      throw new ElfError(`segment ${i} [${hex(s.paddr)}, ${hex(s.paddr + s.memsz)}) lies outside guest RAM`);
    }
  });
  for (const s of image.segments) {
    mem.write(s.paddr, file.subarray(s.fileOffset, s.fileOffset + s.filesz));
    mem.fill(s.paddr + s.filesz, s.memsz - s.filesz, 0);
  }
}
