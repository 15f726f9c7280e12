import { test } from "node:test";
import assert from "node:assert/strict";
import { GuestMemory } from "../memory/guest-memory.js";
import { e820Entries } from "../arch/x86/memory-layout.js";
import { ZERO_PAGE_ADDR } from "../arch/x86/layout.js";
import { BootParamsError, buildZeroPage, writeZeroPage } from "./boot-params.js";
import { parseBzImage } from "./bzimage.js";
import { fakeBzImage } from "./test-fixtures.js";

const MiB = 2 ** 20;

test("bzImage zero page: header copied, loader fields set, e820 table filled", () => {
  const image = parseBzImage(fakeBzImage());
  const e820 = e820Entries(64 * MiB);
  const page = buildZeroPage({ setupHeader: image.setupHeaderBytes, cmdlineAddr: 0x20000, cmdlineCapacity: 20, initrd: { addr: 0x3000000, size: 0x1234 }, e820 });
  const v = new DataView(page.buffer);
  assert.equal(page.length, 4096);
  assert.equal(v.getUint32(0x202, true), 0x53726448, "HdrS");
  assert.equal(v.getUint16(0x206, true), 0x020f, "version copied");
  assert.equal(v.getUint32(0x238, true), 0x7ff, "cmdline_size kept from the kernel");
  assert.equal(page[0x210], 0xff, "type_of_loader");
  assert.equal(page[0x211], 0x81, "LOADED_HIGH | CAN_USE_HEAP");
  assert.equal(v.getUint16(0x224, true), 0xde00, "heap_end_ptr");
  assert.equal(v.getUint32(0x228, true), 0x20000, "cmd_line_ptr");
  assert.equal(v.getUint32(0x218, true), 0x3000000, "ramdisk_image");
  assert.equal(v.getUint32(0x21c, true), 0x1234, "ramdisk_size");
  assert.equal(page[0x1e8], 3, "e820_entries");
  assert.equal(v.getBigUint64(0x2d0 + 20, true), 0x9fc00n);
  assert.equal(v.getUint32(0x2d0 + 20 + 16, true), 2);
  assert.equal(v.getBigUint64(0x2d0 + 40 + 8, true), BigInt(63 * MiB));
  assert.equal(page[0x1ef], 0, "sentinel zero");
});

test("ELF zero page: a made-up header with the magic numbers", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: 0x10000 }]);
  writeZeroPage(mem, { cmdlineAddr: 0x20000, cmdlineCapacity: 2048, e820: e820Entries(64 * MiB) });
  assert.equal(mem.readU16(ZERO_PAGE_ADDR + 0x1fe), 0xaa55);
  assert.equal(mem.readU32(ZERO_PAGE_ADDR + 0x202), 0x53726448);
  assert.equal(mem.readU32(ZERO_PAGE_ADDR + 0x238), 2047);
  assert.equal(mem.readU32(ZERO_PAGE_ADDR + 0x230), 0x1000000);
  assert.equal(mem.readU32(ZERO_PAGE_ADDR + 0x218), 0, "no initrd");
});

test("too many e820 entries is an error", () => {
  const e820 = Array.from({ length: 129 }, (_, i) => ({ addr: i * 4096, size: 4096, type: 1 }));
  assert.throws(() => buildZeroPage({ cmdlineAddr: 0, cmdlineCapacity: 1, e820 }), BootParamsError);
});
