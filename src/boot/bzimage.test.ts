import { test } from "node:test";
import assert from "node:assert/strict";
import { GuestMemory } from "../memory/guest-memory.js";
import { BzImageError, bzImageFootprint, isBzImage, loadBzImage, parseBzImage } from "./bzimage.js";
import { fakeBzImage } from "./test-fixtures.js";

const MiB = 2 ** 20;

test("parses a protocol 2.15 header", () => {
  const image = parseBzImage(fakeBzImage());
  assert.equal(image.header.version, 0x020f);
  assert.equal(image.header.setupSects, 4);
  assert.equal(image.header.cmdlineSize, 0x7ff);
  assert.equal(image.header.initrdAddrMax, 0x7fffffff);
  assert.equal(image.header.prefAddress, 0x1000000);
  assert.equal(image.header.relocatable, true);
  assert.equal(image.setupHeaderBytes.length, 0x26c - 0x1f1);
  assert.equal(image.payload.length, 0x1000);
  assert.equal(image.payload[5], 5);
});

test("setup_sects 0 means 4", () => {
  assert.equal(parseBzImage(fakeBzImage({ setupSects: 0 })).header.setupSects, 4);
  const seven = parseBzImage(fakeBzImage({ setupSects: 7 }));
  assert.equal(seven.payload.byteOffset, 8 * 512);
});

test("rejects truncated and non-bzImage files", () => {
  assert.equal(isBzImage(new Uint8Array(100)), false);
  assert.throws(() => parseBzImage(new Uint8Array(100)), /too short/);
  assert.throws(() => parseBzImage(new Uint8Array(0x1000)), /no "HdrS" signature/);
  const file = fakeBzImage();
  assert.throws(() => parseBzImage(file.subarray(0, 0x240)), /truncated inside its setup header/);
  assert.throws(() => parseBzImage(file.subarray(0, 0x800)), /ends inside its 2560-byte real-mode setup/);
  assert.throws(() => parseBzImage(file.subarray(0, file.length - 16)), /truncated: syssize/);
});

test("rejects old protocols, bad boot flag, zImage and 32-bit-only kernels", () => {
  assert.throws(() => parseBzImage(fakeBzImage({ version: 0x0204 })), /boot protocol 2.04 is older than the 2.06/);
  const badFlag = fakeBzImage();
  badFlag[0x1fe] = 0;
  assert.throws(() => parseBzImage(badFlag), /boot_flag/);
  assert.throws(() => parseBzImage(fakeBzImage({ loadflags: 0 })), /zImage/);
  assert.throws(() => parseBzImage(fakeBzImage({ xloadflags: 0 })), /XLF_KERNEL_64/);
  assert.throws(() => parseBzImage(fakeBzImage({ version: 0x0209 })), /XLF_KERNEL_64/);
  assert.throws(() => parseBzImage(fakeBzImage({ version: 0x0100 })), BzImageError);
  assert.doesNotThrow(() => parseBzImage(fakeBzImage({ version: 0x020c })));
});

test("loads the payload at 1 MiB; footprint covers init_size from pref_address", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: 64 * MiB }]);
  const image = parseBzImage(fakeBzImage({ initSize: 0x800000 }));
  const loaded = loadBzImage(mem, image);
  assert.deepEqual(loaded, { start: MiB, end: 0x1000000 + 0x800000, entry64: MiB + 0x200 });
  assert.deepEqual(mem.read(MiB, 8), image.payload.subarray(0, 8));
  assert.deepEqual(bzImageFootprint(image, 0x2000000).start, 0x2000000);
});

test("a kernel that needs more RAM than the guest has is an error", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: 16 * MiB }]);
  assert.throws(() => loadBzImage(mem, parseBzImage(fakeBzImage())), /which this VM lacks/);
});
