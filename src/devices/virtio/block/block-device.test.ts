import { test } from "node:test";
import assert from "node:assert/strict";
import { GuestMemory } from "../../../memory/guest-memory.js";
import { MmioTransport, STATUS_DEVICE_NEEDS_RESET } from "../mmio-transport.js";
import { CountingInterrupt, FakeMmioDriver, FakeVirtqueue, type TestBuffer } from "../testing/fake-driver.js";
import { VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_RO, VIRTIO_BLK_F_WRITE_ZEROES, VirtioBlock } from "./block-device.js";
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
