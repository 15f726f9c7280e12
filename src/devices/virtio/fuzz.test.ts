/**
 * Hostile-guest fuzzing of the split virtqueue and of the block and entropy devices: random and
 * hand-made descriptor tables, rings and requests. Nothing may escape but a ring-level
 * VirtqError (which the transport turns into DEVICE_NEEDS_RESET), and nothing outside guest
 * RAM may change: the guest regions sit between canary bytes in one host buffer.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { GuestMemory } from "../../memory/guest-memory.js";
import { VirtioBlock } from "./block/block-device.js";
import { MemoryDisk } from "./block/memory-disk.js";
import type { VirtioDevice } from "./device.js";
import { Queue } from "./queue/queue.js";
import { VirtqError } from "./queue/virtq-error.js";
import { VirtioRng } from "./rng/rng-device.js";
import { F_INDIRECT, F_NEXT, F_WRITE, FakeVirtqueue } from "./testing/fake-driver.js";

const RANDOM_CASES = 20000;

// Guest RAM: region A [0, 32K), a hole, region B [64K, 80K). Host: canary | A | canary | B | canary.
const REGION_A = { guestAddr: 0x0, size: 0x8000 };
const REGION_B = { guestAddr: 0x10000, size: 0x4000 };
const HOLE_START = 0x8000;
const CANARY = 0x1000;
const CANARY_BYTE = 0xa5;
const RING_BASE = 0x1000;
const HEADER_AREA = 0x4000;
const INDIRECT_AREA = REGION_B.guestAddr;

/** xorshift32: reproducible cases from a seed. */
class Rng {
  constructor(private state: number) {}
  next(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state;
  }
  int(n: number): number {
    return this.next() % n;
  }
  chance(p: number): boolean {
    return this.next() / 0x1_0000_0000 < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
}

function hostileMemory() {
  const host = new Uint8Array(CANARY * 3 + REGION_A.size + REGION_B.size).fill(CANARY_BYTE);
  const offsets = new Map<bigint, number>([[1n << 40n, CANARY], [2n << 40n, CANARY * 2 + REGION_A.size]]);
  const mem = new GuestMemory(
    [{ ...REGION_A, hostAddr: 1n << 40n }, { ...REGION_B, hostAddr: 2n << 40n }],
    (hostAddr, size) => host.subarray(offsets.get(hostAddr)!, offsets.get(hostAddr)! + size),
  );
  const canariesIntact = () =>
    [0, CANARY + REGION_A.size, CANARY * 2 + REGION_A.size + REGION_B.size].every((at) => host.subarray(at, at + CANARY).every((b) => b === CANARY_BYTE));
  const wipe = () => {
    mem.fill(REGION_A.guestAddr, REGION_A.size, 0);
    mem.fill(REGION_B.guestAddr, REGION_B.size, 0);
  };
  return { mem, canariesIntact, wipe };
}

function randomAddr(r: Rng): bigint {
  switch (r.int(10)) {
    case 6: return BigInt(REGION_B.guestAddr + r.int(REGION_B.size));
    case 7: return BigInt(HOLE_START - r.int(64));
    case 8: return BigInt(HOLE_START + r.int(REGION_B.guestAddr - HOLE_START));
    case 9: return (BigInt(r.next()) << 32n) | BigInt(r.next());
    default: return BigInt(r.int(REGION_A.size));
  }
}

function randomLen(r: Rng): number {
  switch (r.int(8)) {
    case 0: return 0;
    case 1: return 16;
    case 2: return 512 * (1 + r.int(4));
    case 3: return 0xffff_ffff;
    case 4: return r.int(0x1_0000);
    default: return r.int(600);
  }
}

/** A descriptor table of random junk, with plausible device requests mixed in. */
function randomScenario(r: Rng, mem: GuestMemory): { ring: FakeVirtqueue; indirect: boolean; eventIdx: boolean } {
  const size = r.chance(0.1) ? 256 : 1 << r.int(5);
  const ring = new FakeVirtqueue(mem, size, RING_BASE);
  const flags = () => (r.chance(0.05) ? r.int(0x1_0000) : r.int(8));
  const next = () => (r.chance(0.05) ? r.int(0x1_0000) : r.int(size));
  for (let i = 0; i < size; i++) ring.setDescriptor(i, randomAddr(r), randomLen(r), flags(), next());
  // An indirect table area full of junk, and some entries pointing into it.
  for (let i = 0; i < 64; i++) ring.setDescriptor(i, randomAddr(r), randomLen(r), flags(), r.int(70), INDIRECT_AREA);
  for (let i = 0; i < size; i++) if (r.chance(0.1)) ring.setDescriptor(i, BigInt(INDIRECT_AREA + 16 * r.int(8)), 16 * r.int(70) + (r.chance(0.1) ? r.int(16) : 0), F_INDIRECT | (r.chance(0.1) ? F_NEXT : 0), next());
  // Plausible block requests: header, data, status, with random header fields.
  if (size >= 4 && r.chance(0.6)) {
    const hdr = HEADER_AREA + 16 * r.int(16);
    mem.writeU32(hdr, r.pick([0, 1, 4, 8, 11, 13, 2, r.next()]));
    mem.writeU64(hdr + 8, r.pick([0n, 1n, 63n, 64n, BigInt(r.int(100)), 1n << 60n]));
    const dataWritable = r.chance(0.5) ? F_WRITE : 0;
    ring.setDescriptor(0, BigInt(hdr), r.chance(0.9) ? 16 : r.int(32), F_NEXT, 1);
    ring.setDescriptor(1, randomAddr(r) % BigInt(REGION_A.size), r.pick([512, 1024, 16, 32, randomLen(r)]), F_NEXT | dataWritable, 2);
    ring.setDescriptor(2, BigInt(HEADER_AREA + 0x800 + r.int(64)), r.chance(0.9) ? 1 : r.int(4), r.chance(0.9) ? F_WRITE : 0, 0);
    ring.publish(0);
  }
  const count = r.chance(0.05) ? r.int(0x1_0000) : r.int(size);
  for (let i = 0; i < count && i < size; i++) ring.publish(r.chance(0.95) ? r.int(size) : r.int(0x1_0000));
  if (count > size) ring.setAvailIdx(count);
  ring.setUsedEvent(r.int(0x1_0000));
  ring.setAvailFlags(r.int(2));
  return { ring, indirect: r.chance(0.8), eventIdx: r.chance(0.5) };
}

type Scenario = (r: Rng, mem: GuestMemory) => { ring: FakeVirtqueue; indirect: boolean; eventIdx: boolean };

/** Hand-made hostile layouts, each a scenario of its own. */
const handMade: Record<string, Scenario> = {
  "self loop": (_r, mem) => withRing(mem, 8, (q) => { q.setDescriptor(0, 0x6000n, 16, F_NEXT, 0); q.publish(0); }),
  "two-cycle with writable": (_r, mem) => withRing(mem, 8, (q) => { q.setDescriptor(0, 0x6000n, 16, F_NEXT, 1); q.setDescriptor(1, 0x6000n, 1, F_NEXT | F_WRITE, 0); q.publish(0); }),
  "indirect in indirect": (_r, mem) => withRing(mem, 8, (q) => { q.setDescriptor(0, BigInt(INDIRECT_AREA), 16, F_INDIRECT, 0, INDIRECT_AREA); q.setDescriptor(0, BigInt(INDIRECT_AREA), 16, F_INDIRECT, 0); q.publish(0); }),
  "indirect loop": (_r, mem) => withRing(mem, 8, (q) => { q.setDescriptor(0, 0x6000n, 1, F_NEXT, 1, INDIRECT_AREA); q.setDescriptor(1, 0x6000n, 1, F_NEXT, 0, INDIRECT_AREA); q.setDescriptor(0, BigInt(INDIRECT_AREA), 32, F_INDIRECT, 0); q.publish(0); }),
  "indirect table sizes": (_r, mem) => withRing(mem, 8, (q) => { [0, 15, 17, 0xffff_fff0, 0x8_0010].forEach((len, i) => { q.setDescriptor(i, BigInt(INDIRECT_AREA), len, F_INDIRECT, 0); q.publish(i); }); }),
  "indirect table crossing into the hole": (_r, mem) => withRing(mem, 8, (q) => { q.setDescriptor(0, BigInt(HOLE_START - 16), 64, F_INDIRECT, 0); q.publish(0); }),
  "buffers in the hole and at 2^64-1": (_r, mem) => withRing(mem, 8, (q) => { q.setDescriptor(0, BigInt(HOLE_START + 8), 8, F_WRITE, 0); q.setDescriptor(1, (1n << 64n) - 1n, 0xffff_ffff, F_WRITE, 0); q.setDescriptor(2, BigInt(HOLE_START - 4), 8, F_WRITE, 0); [0, 1, 2].forEach((h) => q.publish(h)); }),
  "zero-length everything": (_r, mem) => withRing(mem, 8, (q) => { q.setDescriptor(0, 0x6000n, 0, F_NEXT, 1); q.setDescriptor(1, 0x6000n, 0, F_WRITE | F_NEXT, 2); q.setDescriptor(2, 0x6000n, 0, F_WRITE, 0); q.publish(0); }),
  "huge writable buffers over the whole region": (_r, mem) => withRing(mem, 8, (q) => { for (let i = 0; i < 7; i++) q.setDescriptor(i, 0n, REGION_A.size, F_WRITE | F_NEXT, i + 1); q.setDescriptor(7, BigInt(REGION_B.guestAddr), REGION_B.size, F_WRITE, 0); q.publish(0); }),
  "block read over its own rings": (_r, mem) => withRing(mem, 8, (q) => { mem.writeU32(HEADER_AREA, 0); q.setDescriptor(0, BigInt(HEADER_AREA), 16, F_NEXT, 1); q.setDescriptor(1, BigInt(RING_BASE), 512, F_WRITE | F_NEXT, 2); q.setDescriptor(2, BigInt(HEADER_AREA + 0x800), 1, F_WRITE, 0); q.publish(0); q.publish(0); }),
  "avail idx jump": (_r, mem) => withRing(mem, 8, (q) => { q.setDescriptor(0, 0x6000n, 1, F_WRITE, 0); q.publish(0); q.setAvailIdx(9); }),
  "avail idx wraps backwards": (_r, mem) => withRing(mem, 8, (q) => { q.setAvailIdx(0xffff); }),
  "head past the table": (_r, mem) => withRing(mem, 8, (q) => { q.publish(8); q.publish(0xffff); }),
  "used ring on top of the avail ring": (_r, mem) => {
    const q = new FakeVirtqueue(mem, 8, RING_BASE);
    (q.layout as { usedRing: number }).usedRing = q.layout.availRing;
    q.setDescriptor(0, 0x6000n, 4, F_WRITE, 0);
    q.publish(0);
    q.publish(0);
    return { ring: q, indirect: true, eventIdx: true };
  },
};

function withRing(mem: GuestMemory, size: number, build: (q: FakeVirtqueue) => void) {
  const q = new FakeVirtqueue(mem, size, RING_BASE);
  build(q);
  return { ring: q, indirect: true, eventIdx: true };
}

interface Outcome { escapes: string[]; ringFailures: number }

/** The queue on its own: pop every chain, walk it, return it. Only VirtqErrors may come out. */
function driveQueue(queue: Queue, outcome: Outcome): void {
  try {
    for (let chain = queue.pop(), n = 0; chain && n < 0x1_0000; chain = queue.pop(), n++) {
      try {
        for (const d of chain) void d;
      } catch (err) {
        if (!(err instanceof VirtqError)) throw err;
      }
      queue.addUsed(chain.head, 0);
    }
    queue.needsNotification();
  } catch (err) {
    if (err instanceof VirtqError && err.ringBroken) outcome.ringFailures++;
    else outcome.escapes.push(`queue: ${(err as Error).stack}`);
  }
}

function driveDevice(name: string, device: VirtioDevice, mem: GuestMemory, queue: Queue, outcome: Outcome): void {
  try {
    device.activate({ mem, queues: [queue], ackedFeatures: device.features, interrupt: () => {} });
    device.processQueue(0);
  } catch (err) {
    if (err instanceof VirtqError && err.ringBroken) outcome.ringFailures++;
    else outcome.escapes.push(`${name}: ${(err as Error).stack}`);
  }
}

test("hostile descriptor tables never escape the queue, block or rng, nor touch memory outside guest RAM", () => {
  const { mem, canariesIntact, wipe } = hostileMemory();
  const disk = new MemoryDisk(new Uint8Array(64 * 512));
  const blk = new VirtioBlock({ disk });
  const rng = new VirtioRng({ source: { fill: (d) => d.fill(0x5a) } });
  const devices: [string, VirtioDevice][] = [["virtio-blk", blk], ["virtio-rng", rng]];
  const outcome: Outcome = { escapes: [], ringFailures: 0 };
  let cases = 0;

  const runScenario = (scenario: Scenario, seed: number, label: string) => {
    const targets: ((q: Queue) => void)[] = [(q) => driveQueue(q, outcome), ...devices.map(([name, d]) => (q: Queue) => driveDevice(name, d, mem, q, outcome))];
    for (const target of targets) {
      wipe();
      const { ring, indirect, eventIdx } = scenario(new Rng(seed), mem);
      let queue: Queue;
      try {
        queue = new Queue(mem, ring.layout, { indirect, eventIdx });
      } catch (err) {
        if (!(err instanceof VirtqError)) outcome.escapes.push(`layout (${label}): ${(err as Error).stack}`);
        continue;
      }
      target(queue);
      cases++;
    }
    assert.deepEqual(outcome.escapes, [], `escape in ${label}`);
  };

  for (const [name, scenario] of Object.entries(handMade)) {
    runScenario(scenario, 1, name);
    assert.ok(canariesIntact(), `canary overwritten by ${name}`);
  }
  for (let i = 0; i < RANDOM_CASES / 3; i++) {
    const seed = 0x9e37_79b9 ^ (i * 0x85eb_ca6b);
    runScenario(randomScenario, seed || 1, `random seed ${seed}`);
    if (i % 256 === 0) assert.ok(canariesIntact(), `canary overwritten by random seed ${seed}`);
  }
  assert.ok(canariesIntact());
  const m = blk.metrics;
  console.log(
    `virtio fuzz: ${cases} cases, ${outcome.escapes.length} escapes (${outcome.ringFailures} broken rings reported; ` +
      `blk ${m.readOps + m.writeOps + m.flushOps + m.getIdOps + m.discardOps + m.writeZeroesOps} ok, ${m.rejectedRequests} refused, ${m.invalidRequests} malformed; ` +
      `rng ${rng.metrics.requests - rng.metrics.invalidRequests} ok, ${rng.metrics.invalidRequests} malformed)`,
  );
  assert.equal(outcome.escapes.length, 0);
});

test("indices keep working across the 16-bit wrap under constant traffic", () => {
  const { mem } = hostileMemory();
  const ring = new FakeVirtqueue(mem, 1, RING_BASE);
  const rng = new VirtioRng({ source: { fill: (d) => d.fill(1) } });
  rng.activate({ mem, queues: [new Queue(mem, ring.layout, { indirect: false, eventIdx: true })], ackedFeatures: rng.features, interrupt: () => {} });
  for (let i = 0; i < 0x1_0000 + 5; i++) {
    ring.addChain([{ addr: 0x6000, len: 4, writable: true }]);
    rng.processQueue(0);
    assert.equal(ring.takeUsed().length, 1);
  }
  assert.equal(ring.usedIdx(), 5);
});
