import { test } from "node:test";
import assert from "node:assert/strict";
import { E820_RAM, E820_RESERVED, e820Entries, guestRamRegions, lowRamEnd, MemoryLayoutError } from "./memory-layout.js";
import { GiB, MiB } from "./layout.js";

test("64 MiB guest: one region from 0, e820 with the EBDA/BIOS hole", () => {
  assert.deepEqual(guestRamRegions(64 * MiB), [{ guestAddr: 0, size: 64 * MiB }]);
  assert.deepEqual(e820Entries(64 * MiB), [
    { addr: 0, size: 0x9fc00, type: E820_RAM },
    { addr: 0x9fc00, size: 0x100000 - 0x9fc00, type: E820_RESERVED },
    { addr: 0x100000, size: 63 * MiB, type: E820_RAM },
  ]);
});

test("3.5 GiB guest: 3 GiB below the hole, 512 MiB from 4 GiB", () => {
  const mem = 3.5 * GiB;
  assert.deepEqual(guestRamRegions(mem), [
    { guestAddr: 0, size: 3 * GiB },
    { guestAddr: 4 * GiB, size: 512 * MiB },
  ]);
  const e820 = e820Entries(mem);
  assert.equal(e820.length, 4);
  assert.deepEqual(e820[2], { addr: 0x100000, size: 3 * GiB - 0x100000, type: E820_RAM });
  assert.deepEqual(e820[3], { addr: 4 * GiB, size: 512 * MiB, type: E820_RAM });
});

test("16 GiB guest (layout only): 13 GiB above 4 GiB, RAM totals match", () => {
  const mem = 16 * GiB;
  assert.deepEqual(guestRamRegions(mem), [
    { guestAddr: 0, size: 3 * GiB },
    { guestAddr: 4 * GiB, size: 13 * GiB },
  ]);
  const ramBytes = e820Entries(mem).filter((e) => e.type === E820_RAM).reduce((n, e) => n + e.size, 0);
  assert.equal(ramBytes, mem - (0x100000 - 0x9fc00));
  assert.equal(lowRamEnd(mem), 3 * GiB);
});

test("exactly 3 GiB has no high region", () => {
  assert.equal(guestRamRegions(3 * GiB).length, 1);
  assert.equal(e820Entries(3 * GiB).length, 3);
});

test("bad sizes are rejected with a clear error", () => {
  assert.throws(() => guestRamRegions(64 * MiB + 1), MemoryLayoutError);
  assert.throws(() => guestRamRegions(1 * MiB), /outside/);
  assert.throws(() => e820Entries(-4096), MemoryLayoutError);
  assert.throws(() => e820Entries(Number.NaN), MemoryLayoutError);
});
