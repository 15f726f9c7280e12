import { test } from "node:test";
import assert from "node:assert/strict";
import { GuestMemory } from "../../../memory/guest-memory.js";
import { F_INDIRECT, F_NEXT, F_WRITE, FakeVirtqueue } from "../testing/fake-driver.js";
import { MAX_QUEUE_SIZE } from "./descriptor-chain.js";
import { Queue } from "./queue.js";
import { VirtqError } from "./virtq-error.js";

const MiB = 1 << 20;
const RING_BASE = 0x1000;
const DATA = 0x10000;

/** A 512-entry queue: a chain, indirect tables included, is at most the queue size (virtio 1.2 §2.7.5.3.1). */
function setup(layout = [{ guestAddr: 0, size: MiB }]) {
  const mem = GuestMemory.anonymous(layout);
  const fake = new FakeVirtqueue(mem, 512, RING_BASE);
  return { mem, fake, queue: new Queue(mem, fake.layout, { indirect: true, eventIdx: false }) };
}

const buffers = (n: number) => Array.from({ length: n }, (_, i) => ({ addr: DATA + i * 0x100, len: 0x10 + i, writable: i >= n / 2 }));

test("indirect tables of every size read whole come back descriptor for descriptor", () => {
  const { fake, queue } = setup();
  for (const n of [1, 3, 7, 8, 9, 40, 200]) {
    fake.addIndirectChain(0x8000, buffers(n));
    assert.deepEqual(queue.pop()!.descriptors(), buffers(n), `${n} descriptors`);
  }
});

test("a bigger table after a smaller one, and a smaller after a bigger, leave nothing behind", () => {
  const { fake, queue } = setup();
  fake.addIndirectChain(0x8000, buffers(300));
  assert.equal(queue.pop()!.descriptors().length, 300);
  fake.addIndirectChain(0x8000, buffers(2));
  assert.deepEqual(queue.pop()!.descriptors(), buffers(2));
});

test("an indirect table across two regions that meet in guest space is read across the seam", () => {
  const { mem, fake, queue } = setup([{ guestAddr: 0, size: MiB }, { guestAddr: MiB, size: MiB }]);
  // 40 descriptors from 3 descriptors before the seam, and from 52 bytes before it (a descriptor split mid-field).
  for (const table of [MiB - 48, MiB - 52]) {
    mem.write(table, descriptorTable(buffers(40)));
    fake.setDescriptor(0, table, 40 * 16, F_INDIRECT, 0);
    fake.publish(0);
    assert.deepEqual(queue.pop()!.descriptors(), buffers(40), `table at 0x${table.toString(16)}`);
  }
});

/** struct virtq_desc entries chaining `list` in order (virtio 1.2 §2.7.5), as bytes. */
function descriptorTable(list: readonly { addr: number; len: number; writable: boolean }[]): Uint8Array {
  const bytes = new Uint8Array(16 * list.length);
  const view = new DataView(bytes.buffer);
  list.forEach((d, i) => {
    const last = i === list.length - 1;
    view.setBigUint64(16 * i, BigInt(d.addr), true);
    view.setUint32(16 * i + 8, d.len, true);
    view.setUint16(16 * i + 12, (d.writable ? F_WRITE : 0) | (last ? 0 : F_NEXT), true);
    view.setUint16(16 * i + 14, last ? 0 : i + 1, true);
  });
  return bytes;
}

test("a chain counts its direct and indirect descriptors against one budget: the queue size", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: 2 * MiB }]);
  const fake = new FakeVirtqueue(mem, 256, RING_BASE);
  const queue = new Queue(mem, fake.layout, { indirect: true, eventIdx: false });
  const table = MiB;
  // 255 direct descriptors, then an indirect table of 2: 257 buffers on a 256-entry queue.
  for (let i = 0; i < 255; i++) fake.setDescriptor(i, DATA, 1, F_NEXT, i + 1);
  fake.setDescriptor(255, table, 2 * 16, F_INDIRECT, 0);
  fake.setDescriptor(0, DATA, 1, F_NEXT, 1, table);
  fake.setDescriptor(1, DATA, 1, 0, 0, table);
  fake.publish(0);
  assert.throws(() => queue.pop()!.descriptors(), (e: VirtqError) => e.code === "chain-too-long");
  // 254 direct and 2 indirect is exactly the queue size, and fine.
  fake.publish(1);
  assert.equal(queue.pop()!.descriptors().length, 256);
});

test("an indirect table longer than the queue is refused before it is read", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: 2 * MiB }]);
  const fake = new FakeVirtqueue(mem, 256, RING_BASE);
  const queue = new Queue(mem, fake.layout, { indirect: true, eventIdx: false });
  fake.setDescriptor(0, MiB, MAX_QUEUE_SIZE * 16, F_INDIRECT, 0);
  fake.publish(0);
  fake.setDescriptor(1, MiB, 257 * 16, F_INDIRECT, 0);
  fake.publish(1);
  for (let i = 0; i < 2; i++) assert.throws(() => queue.pop()!.descriptors(), (e: VirtqError) => e.code === "indirect-table-size");
});

test("a loop inside an indirect table is cut at the queue size", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: 2 * MiB }]);
  const fake = new FakeVirtqueue(mem, 256, RING_BASE);
  const queue = new Queue(mem, fake.layout, { indirect: true, eventIdx: false });
  for (let i = 0; i < 256; i++) fake.setDescriptor(i, DATA, 1, F_NEXT | F_WRITE, (i + 1) % 256, MiB);
  fake.setDescriptor(0, MiB, 256 * 16, F_INDIRECT, 0);
  fake.publish(0);
  assert.throws(() => queue.pop()!.descriptors(), (e: VirtqError) => e.code === "chain-too-long");
});
