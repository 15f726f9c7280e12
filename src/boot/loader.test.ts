import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { GuestMemory } from "../memory/guest-memory.js";
import { guestRamRegions } from "../arch/x86/memory-layout.js";
import { CMDLINE_ADDR, PML4_ADDR, PVH_START_INFO_ADDR, ZERO_PAGE_ADDR } from "../arch/x86/layout.js";
import { KernelFormatError, loadKernel } from "./loader.js";
import { BootLayoutError } from "./boot-layout.js";
import { CmdlineError } from "./cmdline.js";
import { fakeBzImage, fakeElf } from "./test-fixtures.js";

const MiB = 2 ** 20;
const code = new Uint8Array([0xf4, 0xeb, 0xfd]);

function guest(memBytes: number): GuestMemory {
  return GuestMemory.anonymous(guestRamRegions(memBytes));
}

function cString(mem: GuestMemory, addr: number): string {
  let s = "";
  for (let b = mem.readU8(addr); b !== 0; b = mem.readU8(++addr)) s += String.fromCharCode(b);
  return s;
}

test("bzImage: 64-bit entry at 1 MiB + 0x200 with zero page, page tables, cmdline and initrd", () => {
  const mem = guest(64 * MiB);
  const initrd = new Uint8Array(10000).fill(7);
  const entry = loadKernel(mem, fakeBzImage(), { cmdline: "console=ttyS0 panic=-1", initrd, memBytes: 64 * MiB });
  assert.equal(entry.format, "bzImage");
  assert.equal(entry.mode, "long64");
  assert.equal(entry.rip, MiB + 0x200);
  assert.equal(entry.rsi, ZERO_PAGE_ADDR);
  assert.equal(entry.cr3, PML4_ADDR);
  assert.equal(entry.segments.cs.selector, 0x10);
  assert.equal(entry.segments.cs.l, 1);
  assert.equal(entry.segments.ds.selector, 0x18);
  assert.equal(entry.segments.tr.type, 0xb);
  assert.equal(entry.segments.ldt.unusable, 1);
  assert.equal(cString(mem, mem.readU32(ZERO_PAGE_ADDR + 0x228)), "console=ttyS0 panic=-1");
  const initrdAddr = mem.readU32(ZERO_PAGE_ADDR + 0x218);
  assert.equal(initrdAddr, 64 * MiB - 3 * 4096, "page-aligned at the top of RAM");
  assert.equal(mem.readU32(ZERO_PAGE_ADDR + 0x21c), 10000);
  assert.equal(mem.readU8(initrdAddr + 9999), 7);
  assert.equal(mem.readU8(ZERO_PAGE_ADDR + 0x1e8), 3, "e820 entries");
});

test("bzImage: command line longer than cmdline_size is rejected", () => {
  assert.throws(() => loadKernel(guest(64 * MiB), fakeBzImage({ cmdlineSize: 10 }), { cmdline: "console=ttyS0", memBytes: 64 * MiB }), CmdlineError);
});

test("ELF with PVH note: 32-bit protected mode at the PVH entry, ebx = start_info", () => {
  const mem = guest(64 * MiB);
  const kernel = fakeElf({ elfClass: 64, entry: 0x1000000, segments: [{ paddr: 0x1000000, data: code, memsz: 0x1000 }], pvhEntry: 0x1000001 });
  const entry = loadKernel(mem, kernel, { cmdline: "quiet", initrd: new Uint8Array([1, 2, 3]), memBytes: 64 * MiB });
  assert.equal(entry.format, "elf-pvh");
  assert.equal(entry.mode, "protected32");
  assert.equal(entry.rip, 0x1000001);
  assert.equal(entry.rbx, PVH_START_INFO_ADDR);
  assert.equal(entry.cr3, undefined);
  assert.equal(entry.segments.cs.selector, 0x08);
  assert.equal(entry.segments.cs.db, 1);
  assert.equal(entry.segments.cs.limit, 0xffffffff);
  assert.equal(entry.segments.tr.limit, 0x67);
  assert.equal(cString(mem, Number(mem.readU64(PVH_START_INFO_ADDR + 24))), "quiet");
  assert.equal(mem.readU32(PVH_START_INFO_ADDR + 12), 1, "initrd as module 0");
  assert.deepEqual(mem.read(0x1000000, 3), code);
});

test("ELF64 without PVH note: Linux 64-bit entry at e_entry", () => {
  const mem = guest(64 * MiB);
  const kernel = fakeElf({ elfClass: 64, entry: 0x1000000, segments: [{ paddr: 0x1000000, data: code }] });
  const entry = loadKernel(mem, kernel, { cmdline: "ro", memBytes: 64 * MiB });
  assert.equal(entry.format, "elf64");
  assert.equal(entry.mode, "long64");
  assert.equal(entry.rip, 0x1000000);
  assert.equal(entry.rsi, ZERO_PAGE_ADDR);
  assert.equal(entry.cr3, PML4_ADDR);
  assert.equal(mem.readU32(ZERO_PAGE_ADDR + 0x228), CMDLINE_ADDR);
  assert.equal(mem.readU32(ZERO_PAGE_ADDR + 0x202), 0x53726448);
});

test("ELF32 below 1 MiB: real mode with CS = entry >> 4", () => {
  const mem = guest(16 * MiB);
  const kernel = fakeElf({ elfClass: 32, entry: 0x10005, segments: [{ paddr: 0x10000, data: new Uint8Array(16) }] });
  const entry = loadKernel(mem, kernel, { cmdline: "", memBytes: 16 * MiB });
  assert.equal(entry.format, "elf-realmode");
  assert.equal(entry.mode, "real16");
  assert.equal(entry.segments.cs.selector, 0x1000);
  assert.equal(entry.segments.cs.base, 0x10000);
  assert.equal(entry.rip, 5);
  assert.equal(entry.segments.ss.base, 0);
  assert.equal(entry.segments.tr.present, 1);
  assert.equal(mem.readU64(0x500), 0n, "no GDT written for real mode");
});

test("ELF32 above 1 MiB: flat protected mode, ebx = 0", () => {
  const mem = guest(16 * MiB);
  const kernel = fakeElf({ elfClass: 32, entry: 0x200000, segments: [{ paddr: 0x200000, data: code }] });
  const entry = loadKernel(mem, kernel, { cmdline: "", memBytes: 16 * MiB });
  assert.equal(entry.format, "elf32");
  assert.equal(entry.mode, "protected32");
  assert.equal(entry.rip, 0x200000);
  assert.equal(entry.rbx, 0);
  assert.equal(entry.segments.cs.selector, 0x08);
});

test("unknown formats, bad entries and overlaps are clear errors", () => {
  const mem = guest(16 * MiB);
  const opts = { cmdline: "", memBytes: 16 * MiB };
  assert.throws(() => loadKernel(mem, new Uint8Array([0x4d, 0x5a, 1, 2]), opts),
    (e: unknown) => e instanceof KernelFormatError && /not a Linux kernel: no ELF magic and no bzImage 'HdrS' signature \(4 bytes, starting 4d 5a 01 02\)/.test(e.message));
  assert.throws(() => loadKernel(mem, fakeElf({ elfClass: 32, entry: 0x300000, segments: [{ paddr: 0x200000, data: code }] }), opts), /e_entry 0x300000 lies outside/);
  assert.throws(() => loadKernel(mem, fakeElf({ elfClass: 64, entry: 0x9000, segments: [{ paddr: 0x9000, data: code }] }), opts),
    (e: unknown) => e instanceof BootLayoutError && /page tables/.test(e.message));
  assert.throws(() => loadKernel(mem, fakeElf({ elfClass: 32, entry: 0x8100, segments: [{ paddr: 0x8000, data: new Uint8Array(0x200) }] }), opts), /boot stack/);
  assert.throws(() => loadKernel(mem, fakeElf({ elfClass: 32, entry: 0x200000, segments: [{ paddr: 0x200000, data: code }] }), { ...opts, initrd: new Uint8Array(1) }),
    /initrd needs a Linux boot protocol/);
  assert.throws(() => loadKernel(mem, fakeBzImage(), { cmdline: "", memBytes: 32 * MiB }), /does not have the layout of a 33554432-byte guest/);
});

const GUEST_DIR = "/work/shared/guest";
for (const [name, expect] of [["bzImage", { format: "bzImage", mode: "long64", rip: MiB + 0x200 }], ["vmlinux", { format: "elf-pvh", mode: "protected32", rip: 0x10005f0 }]] as const) {
  const path = `${GUEST_DIR}/${name}`;
  test(`real ${name} loads into a 256 MiB guest`, { skip: existsSync(path) ? false : `${path} not present` }, () => {
    const mem = guest(256 * MiB);
    const entry = loadKernel(mem, new Uint8Array(readFileSync(path)), { cmdline: "console=ttyS0 panic=-1 reboot=k", initrd: new Uint8Array(4096), memBytes: 256 * MiB });
    assert.equal(entry.format, expect.format);
    assert.equal(entry.mode, expect.mode);
    assert.equal(entry.rip, expect.rip);
  });
}
