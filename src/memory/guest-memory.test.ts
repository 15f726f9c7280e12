import { test } from "node:test";
import assert from "node:assert/strict";
import { GuestMemory, GuestMemoryError, dirtyPageRecords } from "./guest-memory.js";

const MiB = 1 << 20;
const mem = () => GuestMemory.anonymous([{ guestAddr: 0, size: MiB }, { guestAddr: 4 * MiB, size: MiB }]);

test("reads and writes inside RAM, little-endian", () => {
  const m = mem();
  m.writeU32(0x100, 0x11223344);
  assert.equal(m.readU8(0x100), 0x44);
  assert.equal(m.readU16(0x102), 0x1122);
  m.writeU64(4 * MiB + 8, 0x0102030405060708n);
  assert.equal(m.readU64(4 * MiB + 8), 0x0102030405060708n);
  m.write(MiB - 2, Uint8Array.of(1, 2));
  assert.deepEqual([...m.read(MiB - 2, 2)], [1, 2]);
});

test("an address outside guest RAM is an error, never a host access", () => {
  const m = mem();
  for (const [addr, len] of [[MiB, 1], [MiB - 1, 2], [2 * MiB, 4], [-1, 1], [5 * MiB, 1], [2 ** 60, 8], [0.5, 1], [Number.NaN, 1]]) {
    assert.throws(() => m.read(addr, len), GuestMemoryError, `read ${addr}+${len}`);
    assert.throws(() => m.write(addr, new Uint8Array(len)), GuestMemoryError, `write ${addr}+${len}`);
    assert.equal(m.contains(addr, len), false);
  }
  assert.throws(() => m.readU32(MiB - 2), GuestMemoryError);
  assert.throws(() => m.hostAddress(MiB - 1, 2), GuestMemoryError);
});

test("a write that does not fit changes nothing", () => {
  const m = mem();
  m.fill(MiB - 4, 4, 0xaa);
  assert.throws(() => m.write(MiB - 4, new Uint8Array(8)), GuestMemoryError);
  assert.deepEqual([...m.read(MiB - 4, 4)], [0xaa, 0xaa, 0xaa, 0xaa]);
});

test("host addresses follow the mapping", () => {
  const m = mem();
  assert.equal(m.hostAddress(0x10, 4), (1n << 40n) + 0x10n);
  assert.equal(m.hostAddress(4 * MiB + 0x20, 4), (2n << 40n) + 0x20n);
  assert.equal(m.size, 2 * MiB);
});

test("readU32s reads little-endian u32s with one range check, across contiguous regions too", () => {
  const m = GuestMemory.anonymous([{ guestAddr: 0, size: MiB }, { guestAddr: MiB, size: MiB }]);
  const words = Array.from({ length: 40 }, (_, i) => (0x9e3779b9 * (i + 1)) >>> 0);
  const put = (at: number) => words.forEach((w, i) => m.writeU32(at + 4 * i, w));
  // 4 u32s (read one by one) and 40 (copied as bytes), inside one region and across the boundary.
  for (const at of [0x100, MiB - 8, MiB - 80]) {
    put(at);
    for (const count of [4, 40]) {
      const out = new Uint32Array(40);
      m.readU32s(at, out, count);
      assert.deepEqual([...out.subarray(0, count)], words.slice(0, count), `${count} u32s at 0x${at.toString(16)}`);
    }
  }
  const out = new Uint32Array(4);
  assert.throws(() => m.readU32s(2 * MiB - 8, out), GuestMemoryError);
  assert.throws(() => m.readU32s(-4, out), GuestMemoryError);
  assert.throws(() => m.readU32s(0, out, 5), RangeError);
});

test("hostAddressOrUndefined is hostAddress as a number, and undefined wherever hostAddress throws", () => {
  const m = mem();
  assert.equal(m.hostAddressOrUndefined(0x10, 4), Number(m.hostAddress(0x10, 4)));
  assert.equal(m.hostAddressOrUndefined(4 * MiB + 0x20, MiB - 0x20), 2 ** 41 + 0x20);
  for (const [addr, len] of [[MiB - 1, 2], [MiB, 1], [-1, 1], [0.5, 1], [2 ** 60, 8], [0, MiB + 1], [4 * MiB, Number.NaN]]) {
    assert.equal(m.hostAddressOrUndefined(addr, len), undefined, `0x${addr.toString(16)}+${len}`);
    assert.throws(() => m.hostAddress(addr, len), GuestMemoryError);
  }
});

test("host mappings must end below 2^53, where host addresses are exact numbers", () => {
  assert.throws(() => new GuestMemory([{ guestAddr: 0, size: 4096, hostAddr: 1n << 53n }], () => new Uint8Array(4096)), /2\^53/);
});

test("dirty tracking records the pages written through every write path, in KVM's bitmap layout", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: 0x10_0000 }, { guestAddr: 0x20_0000, size: 0x4_0000 }]);
  mem.writeU32(0x1000, 1);
  assert.equal(mem.takeDirtyPages(0).some((w) => w !== 0n), false, "nothing is recorded before tracking starts");
  mem.trackDirtyPages();
  mem.writeU32(0x1ff0, 1); // page 1
  mem.write(0x3ff0, new Uint8Array(0x20)); // pages 3 and 4
  mem.fill(0x40000, 1); // page 64
  mem.slice(0x5000, 1); // a view a device may write: page 5
  mem.hostAddressOrUndefined(0x20_1000, 0x1000); // region 1, page 1
  const words = mem.takeDirtyPages(0);
  assert.equal(words[0], (1n << 1n) | (1n << 3n) | (1n << 4n) | (1n << 5n));
  assert.equal(words[1], 1n);
  assert.equal(mem.takeDirtyPages(1)[0], 2n);
  assert.equal(mem.takeDirtyPages(0)[0], 0n, "taking clears the record");
});

test("dirty records in shared memory: pages written through two views of guest RAM (two threads) land in one record", () => {
  const regions = [{ guestAddr: 0, size: 0x10_0000 }];
  const ram = new ArrayBuffer(0x10_0000);
  const view = () => new GuestMemory([{ ...regions[0], hostAddr: 1n << 40n }], () => new Uint8Array(ram));
  const records = dirtyPageRecords(regions);
  const devices = view();
  const vcpu = view();
  devices.trackDirtyPages(records);
  vcpu.trackDirtyPages(records);
  devices.writeU8(0x2000, 1); // page 2
  vcpu.write(0x7000, new Uint8Array(1)); // page 7, by the other view
  assert.equal(devices.takeDirtyPages(0)[0], (1n << 2n) | (1n << 7n));
  assert.equal(vcpu.takeDirtyPages(0)[0], 0n, "taken once, by either view");
  assert.throws(() => view().trackDirtyPages([]), /0 dirty page records for 1 regions/);
});

test("a span's host view is made on its first use, once (a restore need not wait for V8 to account for guest RAM)", () => {
  const buffers = [new ArrayBuffer(MiB), new ArrayBuffer(MiB)];
  const made: bigint[] = [];
  const m = new GuestMemory([{ guestAddr: 0, size: MiB, hostAddr: 1n << 40n }, { guestAddr: 4 * MiB, size: MiB, hostAddr: 2n << 40n }], (hostAddr, size) => {
    made.push(hostAddr);
    return new Uint8Array(buffers[Number(hostAddr >> 40n) - 1], 0, size);
  });
  assert.deepEqual(made, [], "no view at construction");
  assert.equal(m.size, 2 * MiB);
  m.writeU32(8, 7);
  assert.equal(m.readU32(8), 7);
  assert.deepEqual(made, [1n << 40n], "the first span's view, once");
  m.writeU8(4 * MiB, 1);
  assert.deepEqual(made, [1n << 40n, 2n << 40n]);
  assert.throws(() => m.readU8(2 * MiB), GuestMemoryError);
  assert.equal(made.length, 2);
});
