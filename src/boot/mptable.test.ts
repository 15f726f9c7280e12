import { test } from "node:test";
import assert from "node:assert/strict";
import { GuestMemory } from "../memory/guest-memory.js";
import { MPTABLE_ADDR } from "../arch/x86/layout.js";
import { MAX_MP_CPUS, MpTableError, mpTableSize, writeMpTable } from "./mptable.js";

const sum = (b: Uint8Array) => b.reduce((s, x) => s + x, 0) & 0xff;
const text = (b: Uint8Array) => String.fromCharCode(...b);

test("floating pointer and config table with valid checksums and entries", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: 0x100000 }]);
  const cpus = 4;
  const range = writeMpTable(mem, cpus);
  assert.deepEqual(range, { start: MPTABLE_ADDR, end: MPTABLE_ADDR + mpTableSize(cpus) });

  const mpf = mem.read(MPTABLE_ADDR, 16);
  assert.equal(text(mpf.subarray(0, 4)), "_MP_");
  assert.equal(sum(mpf), 0, "floating pointer checksum");
  assert.equal(mpf[8], 1, "length in 16-byte units");
  assert.equal(mpf[9], 4, "spec revision 1.4");
  const tableAddr = mem.readU32(MPTABLE_ADDR + 4);
  assert.equal(tableAddr, MPTABLE_ADDR + 16);

  const length = mem.readU16(tableAddr + 4);
  const table = mem.read(tableAddr, length);
  assert.equal(text(table.subarray(0, 4)), "PCMP");
  assert.equal(sum(table), 0, "config table checksum");
  assert.equal(length, mpTableSize(cpus) - 16);
  assert.equal(mem.readU32(tableAddr + 36), 0xfee00000, "local APIC address");
  const count = mem.readU16(tableAddr + 34);
  assert.equal(count, cpus + 1 + 1 + 24 + 2);

  // Walk the entries by type.
  let off = 44;
  const types: number[] = [];
  while (off < length) {
    const type = table[off];
    types.push(type);
    if (type === 0) {
      assert.equal(table[off + 1], types.filter((t) => t === 0).length - 1, "APIC id = index");
      assert.equal(table[off + 3], types.length === 1 ? 3 : 1, "enabled, BSP flag only on CPU 0");
    }
    if (type === 2) {
      assert.equal(table[off + 1], cpus, "IOAPIC id = N");
      assert.equal(new DataView(table.buffer, table.byteOffset + off + 4, 4).getUint32(0, true), 0xfec00000);
    }
    if (type === 1) assert.equal(text(table.subarray(off + 2, off + 8)), "ISA   ");
    off += type === 0 ? 20 : 8;
  }
  assert.equal(off, length);
  assert.deepEqual(types, [0, 0, 0, 0, 1, 2, ...Array(24).fill(3), 4, 4]);
  const lint = table.subarray(length - 16);
  assert.deepEqual([lint[1], lint[6], lint[7]], [3, 0, 0], "LINT0 ExtINT to the BSP");
  assert.deepEqual([lint[9], lint[14], lint[15]], [1, 0xff, 1], "LINT1 NMI to all");
});

test("CPU count limits and missing RAM are errors", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: 0x100000 }]);
  assert.throws(() => writeMpTable(mem, 0), MpTableError);
  assert.throws(() => writeMpTable(mem, MAX_MP_CPUS + 1), /1 to 254/);
  assert.doesNotThrow(() => writeMpTable(mem, MAX_MP_CPUS));
  const small = GuestMemory.anonymous([{ guestAddr: 0, size: 0x9fc00 }]);
  assert.throws(() => writeMpTable(small, 1), /does not cover/);
});
