import { test } from "node:test";
import assert from "node:assert/strict";
import { GuestMemory } from "../../../memory/guest-memory.js";
import { F_INDIRECT, F_NEXT, F_WRITE, FakeVirtqueue } from "../testing/fake-driver.js";
import { Queue } from "./queue.js";
import { VirtqError } from "./virtq-error.js";

const RAM = 0x10000;
const RING_BASE = 0x1000;
const DATA = 0x8000;

function setup(size = 8, features = { indirect: true, eventIdx: false }) {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: RAM }]);
  const fake = new FakeVirtqueue(mem, size, RING_BASE);
  const queue = new Queue(mem, fake.layout, features);
  return { mem, fake, queue };
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof VirtqError, `expected VirtqError, got ${e}`);
    return e.code;
  }
  return "no error";
}

test("pop returns published chains in order, then null", () => {
  const { fake, queue } = setup();
  const a = fake.addChain([{ addr: DATA, len: 16 }, { addr: DATA + 16, len: 100, writable: true }]);
  const b = fake.addChain([{ addr: DATA + 200, len: 1, writable: true }]);
  const first = queue.pop();
  assert.equal(first?.head, a);
  assert.deepEqual(first?.descriptors(), [
    { addr: DATA, len: 16, writable: false },
    { addr: DATA + 16, len: 100, writable: true },
  ]);
  assert.equal(queue.pop()?.head, b);
  assert.equal(queue.pop(), null);
});

test("addUsed publishes entries and the used idx", () => {
  const { fake, queue } = setup();
  const head = fake.addChain([{ addr: DATA, len: 8, writable: true }]);
  queue.addUsed(queue.pop()!.head, 5);
  assert.deepEqual(fake.takeUsed(), [{ id: head, len: 5 }]);
  assert.throws(() => queue.addUsed(8, 0), (e: VirtqError) => e.code === "used-entry");
});

test("indices wrap around 65536", () => {
  const { fake, queue } = setup(4);
  for (let i = 0; i < 70000; i++) {
    fake.addChain([{ addr: DATA, len: 4 }]);
    const chain = queue.pop();
    assert.ok(chain);
    queue.addUsed(chain.head, 0);
    fake.takeUsed();
  }
  assert.equal(fake.usedIdx(), 70000 % 65536);
  assert.equal(queue.pop(), null);
});

test("an avail idx claiming more entries than the ring holds breaks the ring for good", () => {
  const { fake, queue } = setup(8);
  fake.setAvailIdx(9);
  assert.equal(codeOf(() => queue.pop()), "avail-index");
  const err = (() => { try { queue.pop(); } catch (e) { return e as VirtqError; } })();
  assert.ok(err?.ringBroken);
});

test("a head index past the table breaks the ring", () => {
  const { mem, fake, queue } = setup(8);
  fake.publish(0);
  mem.writeU16(fake.layout.availRing + 4, 8);
  assert.equal(codeOf(() => queue.pop()), "head-index");
});

test("chain faults are reported per chain", () => {
  const { fake, queue } = setup(8);
  const walk = () => queue.pop()!.descriptors();

  fake.setDescriptor(0, DATA, 4, F_NEXT, 9);
  fake.publish(0);
  assert.equal(codeOf(walk), "descriptor-index");

  fake.setDescriptor(1, DATA, 4, F_NEXT, 2);
  fake.setDescriptor(2, DATA, 4, F_NEXT, 1);
  fake.publish(1);
  assert.equal(codeOf(walk), "chain-too-long");

  fake.setDescriptor(3, RAM - 2, 4, 0, 0);
  fake.publish(3);
  assert.equal(codeOf(walk), "descriptor-range");

  fake.setDescriptor(4, 2n ** 63n, 1, 0, 0);
  fake.publish(4);
  assert.equal(codeOf(walk), "descriptor-range");

  // A zero-length buffer inside RAM is legal.
  fake.setDescriptor(5, DATA, 0, 0, 0);
  fake.publish(5);
  assert.deepEqual(walk(), [{ addr: DATA, len: 0, writable: false }]);
});

test("indirect descriptors are followed and validated", () => {
  const { fake, queue } = setup(8);
  const table = 0x6000;
  const head = fake.addIndirectChain(table, [{ addr: DATA, len: 16 }, { addr: DATA + 16, len: 32, writable: true }]);
  const chain = queue.pop()!;
  assert.equal(chain.head, head);
  assert.deepEqual(chain.descriptors().map((d) => d.len), [16, 32]);

  const walk = () => queue.pop()!.descriptors();
  fake.setDescriptor(1, table, 24, F_INDIRECT, 0);
  fake.publish(1);
  assert.equal(codeOf(walk), "indirect-table-size");

  fake.setDescriptor(2, table, 16, F_INDIRECT | F_NEXT, 3);
  fake.publish(2);
  assert.equal(codeOf(walk), "indirect-with-next");

  fake.setDescriptor(0, table + 0x100, 16, F_INDIRECT, 0, table);
  fake.setDescriptor(3, table, 16, F_INDIRECT, 0);
  fake.publish(3);
  assert.equal(codeOf(walk), "nested-indirect");

  fake.setDescriptor(0, DATA, 1, F_NEXT, 0, table);
  fake.setDescriptor(4, table, 16, F_INDIRECT, 0);
  fake.publish(4);
  assert.equal(codeOf(walk), "chain-too-long");

  fake.setDescriptor(5, RAM - 16, 32, F_INDIRECT, 0);
  fake.publish(5);
  assert.equal(codeOf(walk), "descriptor-range");
});

test("indirect descriptors are refused unless negotiated", () => {
  const { fake, queue } = setup(8, { indirect: false, eventIdx: false });
  fake.addIndirectChain(0x6000, [{ addr: DATA, len: 16 }]);
  assert.equal(codeOf(() => queue.pop()!.descriptors()), "indirect-not-negotiated");
});

test("without EVENT_IDX, VIRTQ_AVAIL_F_NO_INTERRUPT suppresses notifications", () => {
  const { fake, queue } = setup(8);
  assert.equal(queue.needsNotification(), false, "nothing added yet");
  fake.addChain([{ addr: DATA, len: 1 }]);
  queue.addUsed(queue.pop()!.head, 0);
  assert.equal(queue.needsNotification(), true);
  fake.setAvailFlags(1);
  fake.addChain([{ addr: DATA, len: 1 }]);
  queue.addUsed(queue.pop()!.head, 0);
  assert.equal(queue.needsNotification(), false);
});

test("with EVENT_IDX, notifications follow vring_need_event and avail_event asks for kicks", () => {
  const { fake, queue } = setup(8, { indirect: false, eventIdx: true });
  const complete = () => { fake.addChain([{ addr: DATA, len: 1 }]); queue.addUsed(queue.pop()!.head, 0); };
  complete();
  assert.equal(queue.needsNotification(), true, "first notification always goes out");
  fake.setUsedEvent(3); // driver wants an interrupt once used idx passes 3
  complete(); // used idx 2
  assert.equal(queue.needsNotification(), false);
  complete(); // used idx 3
  complete(); // used idx 4: crossed used_event 3
  assert.equal(queue.needsNotification(), true);
  assert.equal(queue.pop(), null);
  assert.equal(fake.availEvent(), 4, "empty queue asks the driver to kick at the next entry");
});

test("undoPop hands the same chain back", () => {
  const { fake, queue } = setup();
  const head = fake.addChain([{ addr: DATA, len: 1 }]);
  assert.equal(queue.pop()?.head, head);
  queue.undoPop();
  assert.equal(queue.pop()?.head, head);
});

test("layouts outside RAM, misaligned or with a bad size are refused", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: RAM }]);
  const ok = { size: 8, descTable: 0x1000, availRing: 0x2000, usedRing: 0x3000 };
  const f = { indirect: false, eventIdx: false };
  assert.ok(new Queue(mem, ok, f));
  for (const bad of [{ size: 0 }, { size: 6 }, { size: 65536 }, { descTable: 0x1008 }, { availRing: 0x2001 }, { usedRing: 0x3002 }, { usedRing: RAM - 8 }, { descTable: -16 }]) {
    assert.equal(codeOf(() => new Queue(mem, { ...ok, ...bad }, f)), "queue-layout", JSON.stringify(bad));
  }
  assert.equal(codeOf(() => new Queue(mem, { ...ok, size: 512 }, f, 256)), "queue-layout");
});

test("descriptor flags F_WRITE mark device-writable buffers", () => {
  const { fake, queue } = setup();
  fake.setDescriptor(0, DATA, 4, F_WRITE, 0);
  fake.publish(0);
  assert.deepEqual(queue.pop()!.descriptors(), [{ addr: DATA, len: 4, writable: true }]);
});
