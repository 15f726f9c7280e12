import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { guestMemoryOver, mapAnonymous, unmap } from "../../../memory/host-mapping.js";
import { MmioTransport } from "../mmio-transport.js";
import { CountingInterrupt, FakeMmioDriver, FakeVirtqueue } from "../testing/fake-driver.js";
import { VirtioBlock } from "./block-device.js";
import { FileDisk } from "./file-disk.js";
import { VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_WRITE_ZEROES } from "./request.js";

const RAM = 4 << 20;
const HDR = 0x8000;
const STATUS = 0x9000;
const TABLE = 0x20000;
const DATA = 0x100000;
const DISK_BYTES = 2 << 20;

test("real guest memory and a real file: preadv/pwritev straight into guest RAM", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "petasan-blk-"));
  const path = join(dir, "disk.img");
  const image = Buffer.alloc(DISK_BYTES).map((_, i) => (i * 13 + (i >> 9)) & 0xff);
  writeFileSync(path, image);
  const hostAddr = mapAnonymous(RAM);
  const disk = FileDisk.open(path);
  t.after(() => { disk.close(); unmap(hostAddr, RAM); rmSync(dir, { recursive: true }); });

  const mem = guestMemoryOver([{ guestAddr: 0, size: RAM, hostAddr }]);
  const transport = new MmioTransport(new VirtioBlock({ disk }), { mem, interrupt: new CountingInterrupt() });
  const q = new FakeVirtqueue(mem, 256, 0x1000);
  assert.equal(new FakeMmioDriver(transport).initialize([q]), 0xf);

  const request = (type: number, sector: number, data: { addr: number; len: number; writable?: boolean }[], indirect = false) => {
    mem.writeU32(HDR, type);
    mem.writeU32(HDR + 4, 0);
    mem.writeU64(HDR + 8, BigInt(sector));
    mem.writeU8(STATUS, 0xff);
    const buffers = [{ addr: HDR, len: 16 }, ...data, { addr: STATUS, len: 1, writable: true }];
    if (indirect) q.addIndirectChain(TABLE, buffers);
    else q.addChain(buffers);
    transport.notify(0);
    const [used] = q.takeUsed();
    return { len: used.len, status: mem.readU8(STATUS) };
  };

  // A read split over two buffers.
  assert.deepEqual(request(VIRTIO_BLK_T_IN, 3, [{ addr: DATA, len: 1024, writable: true }, { addr: DATA + 0x3000, len: 512, writable: true }]), { len: 1537, status: VIRTIO_BLK_S_OK });
  assert.deepEqual(Buffer.from(mem.read(DATA, 1024)), image.subarray(3 * 512, 5 * 512));
  assert.deepEqual(Buffer.from(mem.read(DATA + 0x3000, 512)), image.subarray(5 * 512, 6 * 512));

  // A write of 254 segments (seg_max) through an indirect table filling the queue.
  const segments = Array.from({ length: 254 }, (_, i) => ({ addr: DATA + i * 1024, len: 512 }));
  segments.forEach((s, i) => mem.fill(s.addr, s.len, i & 0xff));
  assert.deepEqual(request(VIRTIO_BLK_T_OUT, 100, segments, true), { len: 1, status: VIRTIO_BLK_S_OK });
  // 1100 segments straight to the disk: more iovecs than one pwritev takes (IOV_MAX). A chain is at most
  // the queue size, but one descriptor can cover several host mappings, so the backend must batch.
  const many = Array.from({ length: 1100 }, (_, i) => ({ addr: DATA + i * 1024, len: 512 }));
  many.forEach((s, i) => mem.fill(s.addr, s.len, i & 0xff));
  disk.write(mem, many, 400 * 512);
  assert.deepEqual(request(VIRTIO_BLK_T_FLUSH, 0, []), { len: 1, status: VIRTIO_BLK_S_OK });
  const onDisk = readFileSync(path);
  for (const i of [0, 1, 253]) assert.ok(onDisk.subarray((100 + i) * 512, (101 + i) * 512).every((b) => b === (i & 0xff)), `segment ${i}`);
  for (const i of [0, 1, 1023, 1024, 1099]) assert.ok(onDisk.subarray((400 + i) * 512, (401 + i) * 512).every((b) => b === (i & 0xff)), `segment ${i} of 1100`);

  // WRITE_ZEROES without unmap: ZERO_RANGE where the file system has it, explicit zeros otherwise.
  mem.writeU64(DATA, 2n);
  mem.writeU32(DATA + 8, 4);
  mem.writeU32(DATA + 12, 0);
  assert.equal(request(VIRTIO_BLK_T_WRITE_ZEROES, 0, [{ addr: DATA, len: 16 }]).status, VIRTIO_BLK_S_OK);
  assert.ok(readFileSync(path).subarray(1024, 3072).every((b) => b === 0));

  // The file shrinks under the device: the read comes back short, then hits EOF -> IOERR.
  truncateSync(path, 4096 + 100);
  assert.equal(request(VIRTIO_BLK_T_IN, 8, [{ addr: DATA, len: 1024, writable: true }]).status, VIRTIO_BLK_S_IOERR);
});
