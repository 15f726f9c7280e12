import { test } from "node:test";
import assert from "node:assert/strict";
import { GuestMemory } from "../memory/guest-memory.js";
import { ElfError, elfSegmentRanges, isElf, loadElf, parseElf } from "./elf.js";
import { fakeElf } from "./test-fixtures.js";

const code = new Uint8Array([0x90, 0x90, 0xf4, 0xeb, 0xfe]);

test("parses ELF64 segments and the 8-byte PVH note", () => {
  const file = fakeElf({ elfClass: 64, entry: 0x1000000, segments: [{ paddr: 0x1000000, data: code, memsz: 0x100 }], pvhEntry: 0x1000002 });
  assert.equal(isElf(file), true);
  const image = parseElf(file);
  assert.equal(image.elfClass, 64);
  assert.equal(image.entry, 0x1000000);
  assert.equal(image.pvhEntry, 0x1000002);
  assert.deepEqual(elfSegmentRanges(image), [{ start: 0x1000000, end: 0x1000100 }]);
});

test("parses ELF32 with a 4-byte PVH note, and without one", () => {
  assert.equal(parseElf(fakeElf({ elfClass: 32, entry: 0x100000, segments: [{ paddr: 0x100000, data: code }], pvhEntry: 0x100001 })).pvhEntry, 0x100001);
  const plain = parseElf(fakeElf({ elfClass: 32, entry: 0x8000, segments: [{ paddr: 0x8000, data: code }] }));
  assert.equal(plain.elfClass, 32);
  assert.equal(plain.pvhEntry, undefined);
});

test("loads segments at p_paddr and zeroes the bss", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: 0x20000 }]);
  mem.fill(0x10000, 0x100, 0xaa);
  const file = fakeElf({ elfClass: 64, entry: 0x10000, segments: [{ paddr: 0x10000, data: code, memsz: 0x80 }] });
  loadElf(mem, file, parseElf(file));
  assert.deepEqual(mem.read(0x10000, 5), code);
  assert.deepEqual([...mem.read(0x10005, 0x7b)].filter((b) => b !== 0), []);
  assert.equal(mem.readU8(0x10080), 0xaa, "nothing written past p_memsz");
});

test("a segment outside guest RAM is rejected before anything is written", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: 0x20000 }]);
  const file = fakeElf({ elfClass: 64, entry: 0x10000, segments: [{ paddr: 0x10000, data: code }, { paddr: 0x1ff00, data: code, memsz: 0x200 }] });
  assert.throws(() => loadElf(mem, file, parseElf(file)), /segment 1 \[0x1ff00, 0x20100\) lies outside guest RAM/);
  assert.equal(mem.readU8(0x10000), 0);
});

/** A valid ELF64 with one segment, for corrupting. */
function base(): { file: Uint8Array; v: DataView } {
  const file = fakeElf({ elfClass: 64, entry: 0x10000, segments: [{ paddr: 0x10000, data: code }] });
  return { file, v: new DataView(file.buffer) };
}

test("malformed headers give clear errors", () => {
  assert.throws(() => parseElf(new Uint8Array([0x7f, 0x45, 0x4c, 0x46])), /too short/);
  assert.throws(() => parseElf(new Uint8Array(64)), /no ELF magic/);
  const cases: [string, (f: Uint8Array, v: DataView) => void, RegExp][] = [
    ["class", (f) => { f[4] = 3; }, /unknown ELF class 3/],
    ["endianness", (f) => { f[5] = 2; }, /not little-endian/],
    ["type", (_, v) => v.setUint16(16, 3, true), /not an executable/],
    ["machine", (_, v) => v.setUint16(18, 3, true), /machine 3 is not x86-64/],
    ["phnum 0", (_, v) => v.setUint16(56, 0, true), /bad program header count e_phnum=0/],
    ["phnum PN_XNUM", (_, v) => v.setUint16(56, 0xffff, true), /e_phnum=65535/],
    ["phnum past EOF", (_, v) => v.setUint16(56, 100, true), /program header table .* runs past the end/],
    ["phentsize", (_, v) => v.setUint16(54, 32, true), /e_phentsize 32/],
    ["segment past EOF", (_, v) => v.setBigUint64(64 + 32, 0x10000n, true), /segment 0 .* runs past the end/],
    ["filesz > memsz", (_, v) => v.setBigUint64(64 + 40, 1n, true), /p_filesz 0x5 > p_memsz 0x1/],
    ["huge paddr", (_, v) => v.setBigUint64(64 + 24, 0xffffffffffff0000n, true), /beyond any guest address/],
  ];
  for (const [name, corrupt, message] of cases) {
    const { file, v } = base();
    corrupt(file, v);
    assert.throws(() => parseElf(file), (e: unknown) => e instanceof ElfError && message.test(e.message), name);
  }
});

test("a note running past its segment is an error", () => {
  const file = fakeElf({ elfClass: 64, entry: 0x10000, segments: [{ paddr: 0x10000, data: code }], pvhEntry: 0x10000 });
  const v = new DataView(file.buffer);
  const noteOff = Number(v.getBigUint64(64 + 56 + 8, true));
  v.setUint32(noteOff + 4, 0x1000, true); // first note's descsz
  assert.throws(() => parseElf(file), /runs past the segment/);
});
