import { test } from "node:test";
import assert from "node:assert/strict";
import { GuestMemory } from "../../../memory/guest-memory.js";
import { MmioTransport, STATUS_DEVICE_NEEDS_RESET } from "../mmio-transport.js";
import { CountingInterrupt, FakeMmioDriver, FakeTimer, FakeVirtqueue, type TestBuffer } from "../testing/fake-driver.js";
import {
  KICK_BUDGET_BYTES, MAX_DISCARD_SECTORS, MAX_DISCARD_SEG, MAX_WRITE_ZEROES_SECTORS, MAX_WRITE_ZEROES_SEG,
  VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_RO, VIRTIO_BLK_F_WRITE_ZEROES, VirtioBlock,
} from "./block-device.js";
import type { DiskBackend } from "./disk-backend.js";
import type { RateLimiterSettings } from "../../rate-limiter.js";
import { MemoryDisk } from "./memory-disk.js";
import { VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_WRITE_ZEROES } from "./request.js";

const HDR = 0x8000;
const DATA = 0x10000;
const STATUS = 0x9000;
const DISK_SECTORS = 64;

function boot(options: { readOnly?: boolean; features?: (offered: bigint) => bigint } = {}) {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: 0x40000 }]);
  const image = new Uint8Array(DISK_SECTORS * 512).map((_, i) => (i * 7) & 0xff);
  const disk = new MemoryDisk(image, options.readOnly);
  const blk = new VirtioBlock({ disk, id: "rootfs-serial" });
  const irq = new CountingInterrupt();
  const transport = new MmioTransport(blk, { mem, interrupt: irq });
  const q = new FakeVirtqueue(mem, 16, 0x1000);
  const driver = new FakeMmioDriver(transport);
  const features = options.features ? options.features(driver.offeredFeatures()) : driver.offeredFeatures();
  assert.equal(driver.initialize([q], features), 0xf);
  return { mem, image, disk, blk, irq, transport, q, driver };
}

function header(mem: GuestMemory, type: number, sector: number | bigint): TestBuffer {
  mem.writeU32(HDR, type);
  mem.writeU32(HDR + 4, 0);
  mem.writeU64(HDR + 8, BigInt(sector));
  return { addr: HDR, len: 16 };
}

const status: TestBuffer = { addr: STATUS, len: 1, writable: true };

function submit(env: ReturnType<typeof boot>, buffers: TestBuffer[]) {
  env.mem.writeU8(STATUS, 0xff);
  const head = env.q.addChain(buffers);
  env.transport.notify(0);
  const used = env.q.takeUsed();
  assert.equal(used.length, 1);
  assert.equal(used[0].id, head);
  return { len: used[0].len, status: env.mem.readU8(STATUS) };
}

test("config space reports capacity, seg_max and block size", () => {
  const { driver } = boot();
  assert.equal(driver.read(0x100), DISK_SECTORS);
  assert.equal(driver.read(0x104), 0);
  assert.equal(driver.read(0x100 + 12), 254);
  assert.equal(driver.read(0x100 + 20), 512);
});

test("reads and writes go between the disk and guest buffers, split anyhow", () => {
  const env = boot();
  const r = submit(env, [header(env.mem, VIRTIO_BLK_T_IN, 2), { addr: DATA, len: 512, writable: true }, { addr: DATA + 0x1000, len: 512, writable: true }, status]);
  assert.deepEqual(r, { len: 1025, status: VIRTIO_BLK_S_OK });
  assert.deepEqual(env.mem.read(DATA, 512), env.image.subarray(1024, 1536));
  assert.deepEqual(env.mem.read(DATA + 0x1000, 512), env.image.subarray(1536, 2048));

  env.mem.fill(DATA, 1024, 0xab);
  // Header split over two descriptors, and status sharing a descriptor with nothing else.
  header(env.mem, VIRTIO_BLK_T_OUT, 5);
  const w = submit(env, [{ addr: HDR, len: 10 }, { addr: HDR + 10, len: 6 }, { addr: DATA, len: 1024 }, status]);
  assert.deepEqual(w, { len: 1, status: VIRTIO_BLK_S_OK });
  assert.ok(env.image.subarray(5 * 512, 7 * 512).every((b) => b === 0xab));
  assert.equal(env.blk.metrics.readBytes, 1024);
  assert.equal(env.blk.metrics.writeBytes, 1024);
  assert.equal(env.irq.triggers, 1, "EVENT_IDX: used_event stays 0, so only the first completion interrupts");
});

test("requests past the end, with bad direction or bad length get IOERR", () => {
  const env = boot();
  const data = (writable: boolean, len = 512): TestBuffer => ({ addr: DATA, len, writable });
  assert.equal(submit(env, [header(env.mem, VIRTIO_BLK_T_IN, DISK_SECTORS), data(true), status]).status, VIRTIO_BLK_S_IOERR);
  assert.equal(submit(env, [header(env.mem, VIRTIO_BLK_T_IN, 2n ** 63n), data(true), status]).status, VIRTIO_BLK_S_IOERR);
  assert.equal(submit(env, [header(env.mem, VIRTIO_BLK_T_OUT, DISK_SECTORS - 1), data(false, 1024), status]).status, VIRTIO_BLK_S_IOERR);
  assert.equal(submit(env, [header(env.mem, VIRTIO_BLK_T_IN, 0), data(false), status]).status, VIRTIO_BLK_S_IOERR);
  assert.equal(submit(env, [header(env.mem, VIRTIO_BLK_T_OUT, 0), data(true), status]).status, VIRTIO_BLK_S_IOERR);
  assert.equal(submit(env, [header(env.mem, VIRTIO_BLK_T_IN, 0), data(true, 100), status]).status, VIRTIO_BLK_S_IOERR);
  assert.deepEqual(submit(env, [{ addr: HDR, len: 8 }, status]), { len: 1, status: VIRTIO_BLK_S_IOERR });
  assert.equal(submit(env, [header(env.mem, VIRTIO_BLK_T_IN, 0), { addr: STATUS, len: 1 }]).len, 0, "no writable status byte: length 0");
  assert.equal(submit(env, [header(env.mem, 99, 0), status]).status, VIRTIO_BLK_S_UNSUPP);
  assert.equal(env.transport.deviceStatus & STATUS_DEVICE_NEEDS_RESET, 0, "bad requests never fail the device");
});

test("GET_ID returns the 20-byte serial; FLUSH flushes", () => {
  const env = boot();
  const r = submit(env, [header(env.mem, VIRTIO_BLK_T_GET_ID, 0), { addr: DATA, len: 20, writable: true }, status]);
  assert.deepEqual(r, { len: 21, status: VIRTIO_BLK_S_OK });
  assert.equal(new TextDecoder().decode(env.mem.read(DATA, 13)), "rootfs-serial");
  assert.equal(env.mem.readU8(DATA + 13), 0);
  assert.equal(submit(env, [header(env.mem, VIRTIO_BLK_T_FLUSH, 0), status]).status, VIRTIO_BLK_S_OK);
  assert.equal(env.disk.flushes, 1);
});

test("DISCARD and WRITE_ZEROES zero their ranges and check flags and bounds", () => {
  const env = boot();
  const range = (i: number, sector: number, sectors: number, flags: number) => {
    env.mem.writeU64(DATA + 16 * i, BigInt(sector));
    env.mem.writeU32(DATA + 16 * i + 8, sectors);
    env.mem.writeU32(DATA + 16 * i + 12, flags);
  };
  range(0, 1, 2, 0);
  range(1, 10, 1, 0);
  assert.equal(submit(env, [header(env.mem, VIRTIO_BLK_T_DISCARD, 0), { addr: DATA, len: 32 }, status]).status, VIRTIO_BLK_S_OK);
  assert.ok(env.image.subarray(512, 1536).every((b) => b === 0) && env.image.subarray(5120, 5632).every((b) => b === 0));
  assert.notEqual(env.image[1536 + 1], 0);

  range(0, 20, 1, 1);
  assert.equal(submit(env, [header(env.mem, VIRTIO_BLK_T_WRITE_ZEROES, 0), { addr: DATA, len: 16 }, status]).status, VIRTIO_BLK_S_OK);
  assert.ok(env.image.subarray(20 * 512, 21 * 512).every((b) => b === 0));
  assert.equal(submit(env, [header(env.mem, VIRTIO_BLK_T_DISCARD, 0), { addr: DATA, len: 16 }, status]).status, VIRTIO_BLK_S_UNSUPP, "unmap flag on discard");
  range(0, DISK_SECTORS - 1, 2, 0);
  assert.equal(submit(env, [header(env.mem, VIRTIO_BLK_T_WRITE_ZEROES, 0), { addr: DATA, len: 16 }, status]).status, VIRTIO_BLK_S_IOERR);
  assert.equal(submit(env, [header(env.mem, VIRTIO_BLK_T_WRITE_ZEROES, 0), { addr: DATA, len: 12 }, status]).status, VIRTIO_BLK_S_IOERR);
});

test("read-only disks advertise RO, refuse writes, still read", () => {
  const env = boot({ readOnly: true });
  assert.ok(env.blk.features & VIRTIO_BLK_F_RO);
  assert.equal(env.blk.features & (VIRTIO_BLK_F_DISCARD | VIRTIO_BLK_F_WRITE_ZEROES), 0n);
  const before = env.image.slice();
  assert.equal(submit(env, [header(env.mem, VIRTIO_BLK_T_OUT, 0), { addr: DATA, len: 512 }, status]).status, VIRTIO_BLK_S_IOERR);
  assert.deepEqual(env.image, before);
  assert.equal(submit(env, [header(env.mem, VIRTIO_BLK_T_IN, 0), { addr: DATA, len: 512, writable: true }, status]).status, VIRTIO_BLK_S_OK);
});

test("requests for features the driver did not accept are UNSUPP", () => {
  const env = boot({ features: (f) => f & ~VIRTIO_BLK_F_DISCARD });
  env.mem.writeU64(DATA, 0n);
  env.mem.writeU32(DATA + 8, 1);
  env.mem.writeU32(DATA + 12, 0);
  assert.equal(submit(env, [header(env.mem, VIRTIO_BLK_T_DISCARD, 0), { addr: DATA, len: 16 }, status]).status, VIRTIO_BLK_S_UNSUPP);
});

test("config space advertises the DISCARD and WRITE_ZEROES limits the device enforces", () => {
  const { driver } = boot();
  assert.equal(driver.read(0x100 + 36), MAX_DISCARD_SECTORS);
  assert.equal(driver.read(0x100 + 40), MAX_DISCARD_SEG);
  assert.equal(driver.read(0x100 + 48), MAX_WRITE_ZEROES_SECTORS);
  assert.equal(driver.read(0x100 + 52), MAX_WRITE_ZEROES_SEG);
  assert.ok(MAX_WRITE_ZEROES_SECTORS * 512 <= 32 * 2 ** 20, "one write-zeroes request zeroes at most 32 MiB");
});

/** A disk that only counts what it is asked to do, of any size, for requests too big to really run. */
class CountingDisk implements DiskBackend {
  readonly readOnly = false;
  readonly canDiscard = true;
  asked = 0;
  constructor(readonly sizeBytes: number) {}
  read(_mem: GuestMemory, segments: readonly { len: number }[]): void { for (const s of segments) this.asked += s.len; }
  write(_mem: GuestMemory, segments: readonly { len: number }[]): void { for (const s of segments) this.asked += s.len; }
  flush(): void {}
  discard(_offset: number, length: number): void { this.asked += length; }
  writeZeroes(_offset: number, length: number): void { this.asked += length; }
  close(): void {}
}

function bootCounting(sizeBytes: number, ramBytes = 0x40000, options: { rateLimiter?: RateLimiterSettings } = {}) {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: ramBytes }]);
  const disk = new CountingDisk(sizeBytes);
  const timer = new FakeTimer();
  const blk = new VirtioBlock({ disk, timer, rateLimiter: options.rateLimiter });
  const transport = new MmioTransport(blk, { mem, interrupt: new CountingInterrupt() });
  const q = new FakeVirtqueue(mem, 256, 0x1000);
  assert.equal(new FakeMmioDriver(transport).initialize([q]), 0xf);
  return { mem, disk, timer, blk, transport, q };
}

function rangesAt(mem: GuestMemory, list: [sector: number, sectors: number][]): TestBuffer {
  list.forEach(([sector, sectors], i) => {
    mem.writeU64(DATA + 16 * i, BigInt(sector));
    mem.writeU32(DATA + 16 * i + 8, sectors);
    mem.writeU32(DATA + 16 * i + 12, 0);
  });
  return { addr: DATA, len: 16 * list.length };
}

test("WRITE_ZEROES and DISCARD refuse overlapping ranges and ranges past the advertised limits, before any work", () => {
  const env = bootCounting(2 ** 30);
  const run = (type: number, list: [number, number][]) => {
    env.mem.writeU8(STATUS, 0xff);
    env.q.addChain([header(env.mem, type, 0), rangesAt(env.mem, list), status]);
    env.transport.notify(0);
    env.q.takeUsed();
    return env.mem.readU8(STATUS);
  };
  // The 1 KiB request that used to zero 1 GiB: 63 ranges over the same 16 MiB.
  assert.equal(run(VIRTIO_BLK_T_WRITE_ZEROES, Array.from({ length: 63 }, () => [0, 32768])), VIRTIO_BLK_S_IOERR);
  assert.equal(run(VIRTIO_BLK_T_DISCARD, [[0, 100], [50, 10]]), VIRTIO_BLK_S_IOERR, "overlapping discard");
  assert.equal(run(VIRTIO_BLK_T_DISCARD, [[100, 10], [0, 101]]), VIRTIO_BLK_S_IOERR, "overlap in any order");
  assert.equal(run(VIRTIO_BLK_T_WRITE_ZEROES, [[0, MAX_WRITE_ZEROES_SECTORS + 1]]), VIRTIO_BLK_S_IOERR, "more than max_write_zeroes_sectors");
  assert.equal(run(VIRTIO_BLK_T_DISCARD, [[0, MAX_DISCARD_SECTORS + 1]]), VIRTIO_BLK_S_IOERR, "more than max_discard_sectors");
  assert.equal(run(VIRTIO_BLK_T_DISCARD, Array.from({ length: MAX_DISCARD_SEG + 1 }, (_, i) => [i, 1])), VIRTIO_BLK_S_IOERR, "more than max_discard_seg");
  assert.equal(env.disk.asked, 0, "nothing reached the disk");
  assert.equal(run(VIRTIO_BLK_T_DISCARD, [[0, 100], [100, 10]]), VIRTIO_BLK_S_OK, "ranges that only touch are fine");
  assert.equal(run(VIRTIO_BLK_T_WRITE_ZEROES, [[0, MAX_WRITE_ZEROES_SECTORS]]), VIRTIO_BLK_S_OK);
  assert.equal(env.disk.asked, 110 * 512 + MAX_WRITE_ZEROES_SECTORS * 512);
});

test("a read of more than 4 GiB is refused before any I/O, and the device keeps working", () => {
  const MiB = 2 ** 20;
  const env = bootCounting(8 * 1024 * MiB, 64 * MiB);
  env.mem.writeU8(STATUS, 0xff);
  // 254 descriptors of 17 MiB over the same guest RAM: 4.2 GiB.
  const data = Array.from({ length: 254 }, () => ({ addr: 16 * MiB, len: 17 * MiB, writable: true }));
  env.q.addChain([header(env.mem, VIRTIO_BLK_T_IN, 0), ...data, status]);
  env.transport.notify(0);
  assert.deepEqual(env.q.takeUsed().map((u) => u.len), [1]);
  assert.equal(env.mem.readU8(STATUS), VIRTIO_BLK_S_IOERR);
  assert.equal(env.disk.asked, 0);
  assert.equal(env.transport.deviceStatus & STATUS_DEVICE_NEEDS_RESET, 0);
});

test("one kick does at most KICK_BUDGET_BYTES of disk work, and the timer carries on with the rest", () => {
  const MiB = 2 ** 20;
  const env = bootCounting(1024 * MiB, 32 * MiB);
  const perRequest = 16 * MiB;
  const requests = 2 * (KICK_BUDGET_BYTES / perRequest) + 1;
  for (let i = 0; i < requests; i++) env.q.addChain([header(env.mem, VIRTIO_BLK_T_IN, 0), { addr: 8 * MiB, len: perRequest, writable: true }, status]);
  env.transport.notify(0);
  assert.equal(env.q.takeUsed().length, KICK_BUDGET_BYTES / perRequest);
  assert.equal(env.timer.armedMs, 0, "the rest goes on at the next turn of the event loop");
  let turns = 1;
  while (env.timer.take()) {
    env.transport.timerFired();
    env.q.takeUsed();
    turns++;
  }
  assert.equal(turns, 3);
  assert.equal(env.disk.asked, requests * perRequest);
  assert.equal(env.blk.metrics.kickBudgetYields, 2);
});

test("the rate limiter holds requests on the ring, counts throttling, and the timer lets them go on", () => {
  const env = bootCounting(2 ** 20, 0x40000, { rateLimiter: { ops: { size: 2, refill_time: 1000 } } });
  for (let i = 0; i < 5; i++) env.q.addChain([header(env.mem, VIRTIO_BLK_T_IN, i), { addr: DATA, len: 512, writable: true }, status]);
  env.transport.notify(0);
  assert.equal(env.q.takeUsed().length, 2, "two ops in the bucket");
  assert.equal(env.blk.metrics.rate_limiter_throttled_events, 1);
  assert.ok(env.timer.armedMs! > 0 && env.timer.armedMs! <= 100, `timer armed for ${env.timer.armedMs} ms`);
  // A kick while throttled serves nothing.
  env.transport.notify(0);
  assert.equal(env.q.takeUsed().length, 0);
  // PATCH: a bigger bucket, at once.
  env.blk.updateRateLimiter({ ops: { size: 100, refill_time: 1000 } });
  assert.equal(env.timer.armedMs, 0);
  env.timer.take();
  env.transport.timerFired();
  assert.equal(env.q.takeUsed().length, 3);
  assert.equal(env.disk.asked, 5 * 512);
});
