import { test } from "node:test";
import assert from "node:assert/strict";
import { assertDisjoint, BootLayoutError } from "./boot-layout.js";

test("disjoint and touching ranges pass; empty ranges are ignored", () => {
  assert.doesNotThrow(() => assertDisjoint([
    { name: "a", start: 0x1000, end: 0x2000 },
    { name: "b", start: 0x2000, end: 0x3000 },
    { name: "empty", start: 0x1800, end: 0x1800 },
  ]));
});

test("overlap names both ranges, also when not adjacent in sort order", () => {
  assert.throws(() => assertDisjoint([
    { name: "kernel", start: 0x0, end: 0x10000 },
    { name: "stack", start: 0x1000, end: 0x2000 },
  ]), (e: unknown) => e instanceof BootLayoutError && e.message === "kernel [0x0, 0x10000) overlaps stack [0x1000, 0x2000)");
  assert.throws(() => assertDisjoint([
    { name: "big", start: 0, end: 0x9000 },
    { name: "small", start: 0x100, end: 0x200 },
    { name: "late", start: 0x8000, end: 0xa000 },
  ]), /big/);
});
