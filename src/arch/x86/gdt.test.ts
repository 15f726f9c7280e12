import { test } from "node:test";
import assert from "node:assert/strict";
import { GuestMemory } from "../../memory/guest-memory.js";
import { decodeDescriptor, encodeDescriptor, realModeSegment, writeBootGdt } from "./gdt.js";
import { BOOT_GDT_ADDR, BOOT_IDT_ADDR } from "./layout.js";

test("boot GDT has the descriptors Linux and PVH expect", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: 0x10000 }]);
  const boot = writeBootGdt(mem);
  assert.deepEqual(boot.gdt, { base: BOOT_GDT_ADDR, limit: 47 });
  assert.deepEqual(boot.idt, { base: BOOT_IDT_ADDR, limit: 7 });
  // Raw values as in Firecracker's gdt tests / Linux GDT_ENTRY(flags, base, limit).
  assert.equal(mem.readU64(BOOT_GDT_ADDR), 0n);
  assert.equal(mem.readU64(BOOT_GDT_ADDR + 0x08), 0x00cf9b000000ffffn);
  assert.equal(mem.readU64(BOOT_GDT_ADDR + 0x10), 0x00af9b000000ffffn);
  assert.equal(mem.readU64(BOOT_GDT_ADDR + 0x18), 0x00cf93000000ffffn);
  assert.equal(mem.readU64(BOOT_GDT_ADDR + 0x20), 0x00008b0000000067n);
  assert.equal(mem.readU64(BOOT_GDT_ADDR + 0x28), 0n);
  assert.equal(mem.readU64(BOOT_IDT_ADDR), 0n);

  assert.deepEqual(boot.code64, { base: 0, limit: 0xffffffff, selector: 0x10, type: 0xb, present: 1, dpl: 0, db: 0, s: 1, l: 1, g: 1, avl: 0, unusable: 0 });
  assert.deepEqual(boot.code32, { ...boot.code64, selector: 0x08, db: 1, l: 0 });
  assert.deepEqual(boot.data, { ...boot.code64, selector: 0x18, type: 0x3, db: 1, l: 0 });
  assert.deepEqual(boot.tss, { base: 0, limit: 0x67, selector: 0x20, type: 0xb, present: 1, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 0 });
});

test("descriptor encode/decode round-trips base and limit bits", () => {
  const raw = encodeDescriptor(0x12345678, 0xabcde, 0x93, 0b0100);
  const seg = decodeDescriptor(raw, 0x30);
  assert.equal(seg.base, 0x12345678);
  assert.equal(seg.limit, 0xabcde);
  assert.equal(seg.db, 1);
  assert.equal(seg.g, 0);
  assert.equal(decodeDescriptor(0n, 0).unusable, 1);
});

test("real-mode segments have base = selector * 16", () => {
  const cs = realModeSegment(0xf000, "code");
  assert.equal(cs.base, 0xf0000);
  assert.equal(cs.limit, 0xffff);
  assert.equal(cs.type, 0xb);
  assert.equal(realModeSegment(0x800, "data").type, 3);
});
