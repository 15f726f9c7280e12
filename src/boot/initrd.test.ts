import { test } from "node:test";
import assert from "node:assert/strict";
import { InitrdError, placeInitrd } from "./initrd.js";

const MiB = 2 ** 20;

test("initrd goes page-aligned at the top of RAM", () => {
  assert.equal(placeInitrd({ size: 5000, top: 64 * MiB, occupied: [{ start: MiB, end: 30 * MiB }] }), 64 * MiB - 0x2000);
});

test("initrd respects initrd_addr_max via top", () => {
  assert.equal(placeInitrd({ size: MiB, top: 0x7fffffff + 1, occupied: [] }), 0x7fffffff + 1 - MiB);
});

test("initrd moves below a kernel that sits at the top", () => {
  const addr = placeInitrd({ size: 2 * MiB, top: 64 * MiB, occupied: [{ start: 60 * MiB, end: 64 * MiB }] });
  assert.equal(addr, 58 * MiB);
});

test("initrd that does not fit is an error", () => {
  assert.throws(() => placeInitrd({ size: 40 * MiB, top: 64 * MiB, occupied: [{ start: MiB, end: 30 * MiB }] }), InitrdError);
  assert.throws(() => placeInitrd({ size: 0, top: 64 * MiB, occupied: [] }), /positive/);
  assert.throws(() => placeInitrd({ size: 128 * MiB, top: 64 * MiB, occupied: [] }), /does not fit/);
});
