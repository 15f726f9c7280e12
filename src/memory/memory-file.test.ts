import assert from "node:assert/strict";
import { test } from "node:test";
import { forEachDirtyRun, regionFileOffsets } from "./memory-file.js";

test("dirty bitmap runs: one call per run of set bits, up to the page count", () => {
  const runs: [number, number][] = [];
  const bitmap = new BigUint64Array([0b1110_0001n | (1n << 63n), 0b11n]);
  forEachDirtyRun(bitmap, 66, (first, count) => runs.push([first, count]));
  assert.deepEqual(runs, [[0, 1], [5, 3], [63, 3]]);
  const capped: [number, number][] = [];
  forEachDirtyRun(new BigUint64Array([~0n]), 10, (first, count) => capped.push([first, count]));
  assert.deepEqual(capped, [[0, 10]]);
});

test("regions follow each other in the memory file", () => {
  assert.deepEqual(regionFileOffsets([{ size: 100 }, { size: 50 }, { size: 7 }]), [0, 100, 150]);
});
