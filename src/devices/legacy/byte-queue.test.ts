import { test } from "node:test";
import assert from "node:assert/strict";
import { ByteQueue } from "./byte-queue.js";

test("ByteQueue keeps order across the ring's wrap-around", () => {
  const q = new ByteQueue(3);
  assert.ok(q.push(1) && q.push(2) && q.push(3));
  assert.equal(q.push(4), false, "a full queue refuses");
  assert.equal(q.shift(), 1);
  assert.ok(q.push(0x1ff), "keeps the low 8 bits");
  assert.deepEqual([q.shift(), q.shift(), q.shift(), q.shift()], [2, 3, 0xff, undefined]);
  assert.equal(q.length, 0);
  assert.equal(q.free, 3);
});

test("ByteQueue.clear empties it", () => {
  const q = new ByteQueue(2);
  q.push(7);
  q.clear();
  assert.equal(q.shift(), undefined);
});

test("ByteQueue rejects a capacity that is not a positive integer", () => {
  assert.throws(() => new ByteQueue(0), RangeError);
  assert.throws(() => new ByteQueue(1.5), RangeError);
});
