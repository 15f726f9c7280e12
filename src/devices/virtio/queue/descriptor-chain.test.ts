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

function setup(layout = [{ guestAddr: 0, size: MiB }]) {
  const mem = GuestMemory.anonymous(layout);
  const fake = new FakeVirtqueue(mem, 8, RING_BASE);
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

test("the largest indirect table walks, and a loop in it is still cut at its size", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: 2 * MiB }]);
  const fake = new FakeVirtqueue(mem, 8, RING_BASE);
  const queue = new Queue(mem, fake.layout, { indirect: true, eventIdx: false });
  const table = MiB;
  for (let i = 0; i < MAX_QUEUE_SIZE; i++) fake.setDescriptor(i, DATA, 1, F_NEXT | F_WRITE, (i + 1) % MAX_QUEUE_SIZE, table);
  fake.setDescriptor(0, table, MAX_QUEUE_SIZE * 16, F_INDIRECT, 0);
  fake.publish(0);
  assert.throws(() => queue.pop()!.descriptors(), (e: VirtqError) => e.code === "chain-too-long");
});

test("descriptor addresses use all 64 bits: past 2^53 is outside RAM, named in full", () => {
  const { fake, queue } = setup();
  for (const addr of [2n ** 53n, 2n ** 53n - 1n, 0xffff_ffff_0000_0000n, 0x1_0000_0000n + BigInt(DATA)]) {
    fake.setDescriptor(0, addr, 1, 0, 0);
    fake.publish(0);
    assert.throws(() => queue.pop()!.descriptors(), (e: VirtqError) => e.code === "descriptor-range" && e.message.includes(`0x${addr.toString(16)}+`), `0x${addr.toString(16)}`);
  }
});
