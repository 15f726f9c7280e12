import { test } from "node:test";
import assert from "node:assert/strict";
import { GuestMemory } from "../../memory/guest-memory.js";
import { writeIdentityPageTables } from "./page-tables.js";
import { PAGE_TABLES_END, PD_ADDR, PDPT_ADDR, PML4_ADDR } from "./layout.js";

/** Walks the 4-level tables the way the MMU does for a 2 MiB mapping (SDM vol. 3, 4.5.4). */
function translate(mem: GuestMemory, cr3: number, va: number): number {
  const mask = ~0xfffn & 0x000ffffffffff000n;
  const pml4e = mem.readU64(cr3 + Math.floor(va / 2 ** 39) % 512 * 8);
  assert.equal(pml4e & 1n, 1n);
  const pdpte = mem.readU64(Number(pml4e & mask) + Math.floor(va / 2 ** 30) % 512 * 8);
  assert.equal(pdpte & 1n, 1n);
  const pde = mem.readU64(Number(pdpte & mask) + Math.floor(va / 2 ** 21) % 512 * 8);
  assert.equal(pde & 0x81n, 0x81n, "present 2 MiB page");
  return Number(pde & ~0x1fffffn & 0x000fffffffe00000n) + (va % 2 ** 21);
}

test("identity map of the first 4 GiB with 2 MiB pages", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: PAGE_TABLES_END }]);
  const cr3 = writeIdentityPageTables(mem);
  assert.equal(cr3, PML4_ADDR);
  assert.equal(mem.readU64(PML4_ADDR), BigInt(PDPT_ADDR | 3));
  assert.equal(mem.readU64(PML4_ADDR + 8), 0n);
  assert.equal(mem.readU64(PDPT_ADDR + 3 * 8), BigInt((PD_ADDR + 3 * 0x1000) | 3));
  assert.equal(mem.readU64(PDPT_ADDR + 4 * 8), 0n);
  assert.equal(mem.readU64(PD_ADDR), 0x83n);
  for (const va of [0, 0x100000, 0x1234567, 0xbfffffff, 0xfee00000, 0xffffffff]) {
    assert.equal(translate(mem, cr3, va), va);
  }
});
