import { test } from "node:test";
import assert from "node:assert/strict";
import { GuestMemory } from "../memory/guest-memory.js";
import { e820Entries } from "../arch/x86/memory-layout.js";
import { PVH_MEMMAP_ADDR, PVH_MODLIST_ADDR, PVH_START_INFO_ADDR } from "../arch/x86/layout.js";
import { PvhError, writePvhStartInfo, XEN_HVM_START_MAGIC } from "./pvh.js";

const MiB = 2 ** 20;

test("start_info v1 with module list and memory map", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: 0x10000 }]);
  const memmap = e820Entries(256 * MiB);
  const addr = writePvhStartInfo(mem, { cmdlineAddr: 0x20000, initrd: { addr: 0xf000000, size: 0x4321 }, memmap });
  assert.equal(addr, PVH_START_INFO_ADDR);
  assert.equal(mem.readU32(addr), XEN_HVM_START_MAGIC);
  assert.equal(mem.readU32(addr + 4), 1, "version");
  assert.equal(mem.readU32(addr + 12), 1, "nr_modules");
  assert.equal(mem.readU64(addr + 16), BigInt(PVH_MODLIST_ADDR));
  assert.equal(mem.readU64(addr + 24), 0x20000n);
  assert.equal(mem.readU64(addr + 40), BigInt(PVH_MEMMAP_ADDR));
  assert.equal(mem.readU32(addr + 48), 3);
  assert.equal(mem.readU64(PVH_MODLIST_ADDR), 0xf000000n);
  assert.equal(mem.readU64(PVH_MODLIST_ADDR + 8), 0x4321n);
  assert.equal(mem.readU64(PVH_MEMMAP_ADDR + 24), 0x9fc00n, "entry 1 addr");
  assert.equal(mem.readU32(PVH_MEMMAP_ADDR + 24 + 16), 2, "entry 1 reserved");
  assert.equal(mem.readU64(PVH_MEMMAP_ADDR + 48 + 8), BigInt(255 * MiB), "entry 2 size");
});

test("no initrd: no modules", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: 0x10000 }]);
  const addr = writePvhStartInfo(mem, { cmdlineAddr: 0x20000, memmap: e820Entries(64 * MiB) });
  assert.equal(mem.readU32(addr + 12), 0);
  assert.equal(mem.readU64(addr + 16), 0n);
});

test("an oversized memory map is an error", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: 0x10000 }]);
  const memmap = Array.from({ length: 500 }, () => ({ addr: 0, size: 0, type: 1 }));
  assert.throws(() => writePvhStartInfo(mem, { cmdlineAddr: 0, memmap }), PvhError);
});
