import { test } from "node:test";
import assert from "node:assert/strict";
import { GuestMemory, GuestMemoryError } from "../../memory/guest-memory.js";
import { GuestIovecs, IOV_MAX, IOVEC_SIZE } from "./host-iovec.js";

const MiB = 1 << 20;
/** Region i sits at fake host address (i+1) << 40 (GuestMemory.anonymous). */
const HOST_A = 2 ** 40;
const HOST_B = 2 ** 41;

function entries(iov: GuestIovecs): [number, number][] {
  const b = iov.from(0);
  return Array.from({ length: iov.count }, (_, i) => [Number(b.readBigUInt64LE(i * IOVEC_SIZE)), Number(b.readBigUInt64LE(i * IOVEC_SIZE + 8))]);
}

test("one iovec per segment, split where guest RAM changes host mapping, empty segments skipped", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: MiB }, { guestAddr: MiB, size: MiB }]);
  const iov = new GuestIovecs();
  iov.build(mem, [{ addr: 0x1000, len: 512 }, { addr: 0x5000, len: 0 }, { addr: MiB - 0x100, len: 0x300 }]);
  assert.deepEqual(entries(iov), [[HOST_A + 0x1000, 512], [HOST_A + MiB - 0x100, 0x100], [HOST_B, 0x200]]);
  assert.equal(iov.bytes, 512 + 0x300);
});

test("a segment outside guest RAM is a GuestMemoryError", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: MiB }]);
  const iov = new GuestIovecs();
  for (const s of [{ addr: MiB - 4, len: 8 }, { addr: 2 * MiB, len: 1 }, { addr: 2 ** 60, len: 1 }]) {
    assert.throws(() => iov.build(mem, [{ addr: 0, len: 16 }, s]), GuestMemoryError);
  }
});

test("advance resumes after a short transfer, inside an entry or at its end", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: MiB }]);
  const iov = new GuestIovecs();
  iov.build(mem, [{ addr: 0x1000, len: 100 }, { addr: 0x3000, len: 50 }]);
  assert.equal(iov.advance(0, 30), 0);
  assert.deepEqual(entries(iov)[0], [HOST_A + 0x1000 + 30, 70]);
  assert.equal(iov.advance(0, 70), 1);
  assert.equal(iov.advance(1, 50), 2);
  assert.equal(iov.from(1).length, IOVEC_SIZE);
});

test("grows past IOV_MAX entries for a request that needs more, and reuses its space after", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: MiB }]);
  const iov = new GuestIovecs();
  const many = Array.from({ length: IOV_MAX + 10 }, (_, i) => ({ addr: i * 16, len: 8 }));
  iov.build(mem, many);
  assert.equal(iov.count, IOV_MAX + 10);
  assert.deepEqual(entries(iov)[IOV_MAX + 9], [HOST_A + (IOV_MAX + 9) * 16, 8]);
  iov.build(mem, [{ addr: 0x40, len: 4 }]);
  assert.deepEqual(entries(iov), [[HOST_A + 0x40, 4]]);
});
