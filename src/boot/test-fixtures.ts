/**
 * Test-only builders of small synthetic kernel images (bzImage setup header, ELF32/ELF64
 * executables with optional PVH note), so loader tests need no real kernel.
 */

export interface FakeBzImageOptions {
  version?: number;
  setupSects?: number;
  loadflags?: number;
  xloadflags?: number;
  payload?: Uint8Array;
  initSize?: number;
  prefAddress?: number;
  cmdlineSize?: number;
  initrdAddrMax?: number;
}

/** A bzImage with a protocol-2.15-shaped setup header (header ends at 0x26c, like Linux 6.1's). */
export function fakeBzImage(o: FakeBzImageOptions = {}): Uint8Array {
  const setupSects = o.setupSects ?? 4;
  const payload = o.payload ?? new Uint8Array(0x1000).map((_, i) => i & 0xff);
  const setupSize = ((setupSects || 4) + 1) * 512;
  const file = new Uint8Array(setupSize + payload.length);
  const v = new DataView(file.buffer);
  file[0x1f1] = setupSects;
  v.setUint32(0x1f4, payload.length / 16, true);
  v.setUint16(0x1fe, 0xaa55, true);
  file[0x200] = 0xeb;
  file[0x201] = 0x6a;
  v.setUint32(0x202, 0x53726448, true);
  v.setUint16(0x206, o.version ?? 0x020f, true);
  file[0x211] = o.loadflags ?? 0x01;
  v.setUint32(0x214, 0x100000, true);
  v.setUint32(0x22c, o.initrdAddrMax ?? 0x7fffffff, true);
  v.setUint32(0x230, 0x200000, true);
  file[0x234] = 1;
  v.setUint16(0x236, o.xloadflags ?? 0x01, true);
  v.setUint32(0x238, o.cmdlineSize ?? 0x7ff, true);
  v.setBigUint64(0x258, BigInt(o.prefAddress ?? 0x1000000), true);
  v.setUint32(0x260, o.initSize ?? 0x200000, true);
  file.set(payload, setupSize);
  return file;
}

export interface FakeSegment {
  paddr: number;
  data: Uint8Array;
  memsz?: number;
}

export interface FakeElfOptions {
  elfClass: 32 | 64;
  entry: number;
  segments: FakeSegment[];
  /** Adds a Xen PHYS32_ENTRY note with this entry (descriptor size 8 for ELF64, 4 for ELF32). */
  pvhEntry?: number;
}

/** An ET_EXEC ELF for x86-64 or i386 with one PT_LOAD per segment and an optional PT_NOTE. */
export function fakeElf(o: FakeElfOptions): Uint8Array {
  const is64 = o.elfClass === 64;
  const ehsize = is64 ? 64 : 52;
  const phentsize = is64 ? 56 : 32;
  const note = o.pvhEntry === undefined ? undefined : pvhNote(o.pvhEntry, is64 ? 8 : 4);
  const phnum = o.segments.length + (note ? 1 : 0);
  let dataOff = ehsize + phnum * phentsize;
  const placed = o.segments.map((s) => {
    const off = dataOff;
    dataOff += s.data.length;
    return { ...s, off };
  });
  const noteOff = dataOff;
  const file = new Uint8Array(dataOff + (note?.length ?? 0));
  const v = new DataView(file.buffer);
  file.set([0x7f, 0x45, 0x4c, 0x46, is64 ? 2 : 1, 1, 1]);
  v.setUint16(16, 2, true); // ET_EXEC
  v.setUint16(18, is64 ? 62 : 3, true);
  v.setUint32(20, 1, true);
  const word = (off: number, n: number) => (is64 ? v.setBigUint64(off, BigInt(n), true) : v.setUint32(off, n, true));
  word(24, o.entry);
  word(is64 ? 32 : 28, ehsize);
  v.setUint16(is64 ? 52 : 40, ehsize, true);
  v.setUint16(is64 ? 54 : 42, phentsize, true);
  v.setUint16(is64 ? 56 : 44, phnum, true);
  const phdr = (i: number, type: number, off: number, paddr: number, filesz: number, memsz: number) => {
    const ph = ehsize + i * phentsize;
    v.setUint32(ph, type, true);
    if (is64) {
      word(ph + 8, off); word(ph + 16, paddr); word(ph + 24, paddr); word(ph + 32, filesz); word(ph + 40, memsz);
    } else {
      word(ph + 4, off); word(ph + 8, paddr); word(ph + 12, paddr); word(ph + 16, filesz); word(ph + 20, memsz);
    }
  };
  placed.forEach((s, i) => {
    phdr(i, 1, s.off, s.paddr, s.data.length, s.memsz ?? s.data.length);
    file.set(s.data, s.off);
  });
  if (note) {
    phdr(placed.length, 4, noteOff, 0, note.length, note.length);
    file.set(note, noteOff);
  }
  return file;
}

/** A note list: one unrelated GNU note, then Xen's PHYS32_ENTRY (type 18). */
function pvhNote(entry: number, descsz: number): Uint8Array {
  const gnu = [4, 4, 3, 0x00554e47, 0x12345678]; // namesz, descsz, type, "GNU\0", desc
  const bytes = new Uint8Array(gnu.length * 4 + 12 + 4 + descsz);
  const v = new DataView(bytes.buffer);
  gnu.forEach((w, i) => v.setUint32(i * 4, w, true));
  const off = gnu.length * 4;
  v.setUint32(off, 4, true);
  v.setUint32(off + 4, descsz, true);
  v.setUint32(off + 8, 18, true);
  bytes.set([0x58, 0x65, 0x6e, 0], off + 12); // "Xen\0"
  if (descsz === 8) v.setBigUint64(off + 16, BigInt(entry), true);
  else v.setUint32(off + 16, entry, true);
  return bytes;
}
