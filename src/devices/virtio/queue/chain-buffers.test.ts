import { test } from "node:test";
import assert from "node:assert/strict";
import { GuestMemory } from "../../../memory/guest-memory.js";
import { FakeVirtqueue } from "../testing/fake-driver.js";
import { ChainBuffers, readSegments, subSegments, writeSegments } from "./chain-buffers.js";
import { Queue } from "./queue.js";
import { VirtqError } from "./virtq-error.js";

function queueWith(buffers: { addr: number; len: number; writable?: boolean }[]) {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: 0x10000 }]);
  const fake = new FakeVirtqueue(mem, 8, 0x1000);
  fake.addChain(buffers);
  return { mem, chain: new Queue(mem, fake.layout, { indirect: false, eventIdx: false }).pop()! };
}

test("splits a chain into readable and writable streams", () => {
  const { chain } = queueWith([{ addr: 0x8000, len: 10 }, { addr: 0x9000, len: 6 }, { addr: 0xa000, len: 100, writable: true }]);
  const b = ChainBuffers.of(chain);
  assert.equal(b.readableBytes, 16);
  assert.equal(b.writableBytes, 100);
});

test("refuses readable buffers after writable ones", () => {
  const { chain } = queueWith([{ addr: 0x8000, len: 10, writable: true }, { addr: 0x9000, len: 6 }]);
  assert.throws(() => ChainBuffers.of(chain), (e: VirtqError) => e.code === "readable-after-writable");
});

test("subSegments reads across descriptor boundaries and refuses overruns", () => {
  const { mem } = queueWith([{ addr: 0x8000, len: 1 }]);
  const segs = [{ addr: 0x8000, len: 3 }, { addr: 0x9000, len: 5 }];
  mem.write(0x8000, Uint8Array.of(1, 2, 3));
  mem.write(0x9000, Uint8Array.of(4, 5, 6, 7, 8));
  assert.deepEqual([...readSegments(mem, subSegments(segs, 2, 4))], [3, 4, 5, 6]);
  assert.equal(writeSegments(mem, subSegments(segs, 7, 1), Uint8Array.of(9)), 1);
  assert.equal(mem.readU8(0x9004), 9);
  assert.throws(() => subSegments(segs, 6, 3), (e: VirtqError) => e.code === "chain-layout");
});
