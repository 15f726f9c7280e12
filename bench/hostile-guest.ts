/**
 * What a hostile guest can make the VMM spend, per attack (issue 11): heap and log bytes for unclaimed
 * MMIO/PIO accesses and bad register writes, and device-thread time per kick for oversized descriptor
 * chains, WRITE_ZEROES over overlapping ranges, and a read of more than 4 GiB. No VM: the attacks are
 * played from the host on the real device models (fake-driver.ts lays out the rings in guest RAM).
 *
 *   node --expose-gc dist/bench/hostile-guest.js
 *
 * Figures are absolute; run it on two commits to compare a fix with what came before.
 */
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { Bus } from "../src/devices/bus.js";
import { GuestMemory } from "../src/memory/guest-memory.js";
import { EXIT, type KvmRunView } from "../src/kvm/run.js";
import { ExitMailbox, type VcpuControl } from "../src/vmm/vcpu/control.js";
import { ExitServer } from "../src/vmm/device-thread/exit-server.js";
import { createLogger } from "../src/vmm/logger.js";
import { MmioTransport } from "../src/devices/virtio/mmio-transport.js";
import { VirtioBlock } from "../src/devices/virtio/block/block-device.js";
import { FileDisk } from "../src/devices/virtio/block/file-disk.js";
import type { DiskBackend } from "../src/devices/virtio/block/disk-backend.js";
import { CountingInterrupt, F_INDIRECT, F_NEXT, F_WRITE, FakeMmioDriver, FakeVirtqueue } from "../src/devices/virtio/testing/fake-driver.js";
import { VIRTIO_BLK_T_IN, VIRTIO_BLK_T_WRITE_ZEROES } from "../src/devices/virtio/block/request.js";

const MIB = 2 ** 20;
const dir = mkdtempSync(join("/dev/shm", "petasan-hostile-"));
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const heapMiB = () => {
  gc();
  return process.memoryUsage().heapUsed / MIB;
};

/** A logger writing real lines (createLogger) into a file whose size is the log volume. */
function fileLogger(name: string) {
  const path = join(dir, name);
  const fd = openSync(path, "w");
  const log = createLogger({ fd, level: "Debug", origin: "devices" });
  return { log, bytes: () => statSync(path).size, close: () => closeSync(fd) };
}

function unclaimedAccesses(count: number): void {
  const data = new Uint8Array(8);
  const run = { exitReason: EXIT.MMIO, mmioAddr: 0, mmioLen: 4, mmioIsWrite: true, mmioData: () => data.subarray(0, 4) };
  const control = { mailbox: ExitMailbox.Pending, completeExit() {} };
  const out = fileLogger("unclaimed.log");
  const exits = new ExitServer([{ id: 0, control: control as unknown as VcpuControl, run: run as unknown as KvmRunView }], new Bus("pio"), new Bus("mmio"), out.log);
  const before = heapMiB();
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    run.mmioAddr = 0xd000_0000 + i * 4;
    exits.serveAll();
  }
  const ms = performance.now() - t0;
  const grown = heapMiB() - before;
  console.log(`unclaimed MMIO writes to ${count} addresses: heap +${grown.toFixed(1)} MiB, log ${(out.bytes() / 1024).toFixed(1)} KiB, ${ms.toFixed(0)} ms (exits alive: ${exits !== null})`);
  out.close();
}

function badRegisterWrites(count: number): void {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: MIB }]);
  const out = fileLogger("registers.log");
  const disk = FileDisk.open(sparseImage("regs.img", MIB), { readOnly: false });
  const blk = new VirtioBlock({ disk, logger: (l, m) => out.log(l === "warn" ? "Warning" : "Error", m) });
  const transport = new MmioTransport(blk, { mem, interrupt: new CountingInterrupt(), logger: (_l, m) => out.log("Warning", m) });
  const word = new Uint8Array(4);
  const t0 = performance.now();
  for (let i = 0; i < count; i++) transport.write(0x0fc, word);
  const ms = performance.now() - t0;
  console.log(`${count} writes to an unknown register: log ${(out.bytes() / 1024).toFixed(1)} KiB in ${ms.toFixed(0)} ms`);
  out.close();
  disk.close();
}

function sparseImage(name: string, bytes: number): string {
  const path = join(dir, name);
  const fd = openSync(path, "w");
  ftruncateSync(fd, bytes);
  closeSync(fd);
  return path;
}

/** A DeviceTimer the bench fires by hand (the device thread's is a timerfd). */
const timer = { armed: false, arm() { timer.armed = true; }, disarm() { timer.armed = false; } };

/** A block device on a sparse image in /dev/shm (tmpfs: no FALLOC_FL_ZERO_RANGE), a 256-entry queue, driver ready. */
function blockRig(imageBytes: number, ramBytes: number, wrap: (d: DiskBackend) => DiskBackend = (d) => d) {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: ramBytes }]);
  const file = FileDisk.open(sparseImage("disk.img", imageBytes), { readOnly: false });
  const disk = wrap(file);
  const blk = new VirtioBlock({ disk, timer, logger: (l, m) => { if (process.env.BENCH_LOG) console.log(l, m); } } as ConstructorParameters<typeof VirtioBlock>[0]);
  const transport = new MmioTransport(blk, { mem, interrupt: new CountingInterrupt() });
  const q = new FakeVirtqueue(mem, 256, 0x10000);
  if (new FakeMmioDriver(transport).initialize([q]) !== 0xf) throw new Error("driver setup failed");
  return { mem, q, blk, transport, close: () => file.close() };
}

const HDR = 0x1000;
const STATUS = 0x1100;
const TABLE = 0x100000;

/** The whole queue full of one chain: 254 direct data descriptors, then an indirect table of `entries`. */
function longChains(entries: number): void {
  const rig = blockRig(MIB, 2 * MIB);
  const { mem, q } = rig;
  mem.writeU32(HDR, VIRTIO_BLK_T_IN);
  q.setDescriptor(0, HDR, 16, F_NEXT, 1);
  for (let i = 1; i < 255; i++) q.setDescriptor(i, 0x2000, 16, F_NEXT | F_WRITE, i + 1);
  q.setDescriptor(255, TABLE, 16 * entries, F_INDIRECT, 0);
  for (let i = 0; i < entries; i++) q.setDescriptor(i, 0x2000, 16, F_WRITE | (i < entries - 1 ? F_NEXT : 0), i + 1, TABLE);
  for (let i = 0; i < 256; i++) q.publish(0);
  const t0 = performance.now();
  rig.transport.notify(0);
  const ms = performance.now() - t0;
  console.log(`one kick, 256 chains of ${255 + entries} descriptors on a 256-entry queue: ${ms.toFixed(0)} ms of device-thread time, ${q.takeUsed().length} completed`);
  rig.close();
}

/** One request of 1 KiB: a header and 63 ranges, each zeroing the whole 16 MiB disk. */
function overlappingWriteZeroes(): void {
  let zeroed = 0;
  const rig = blockRig(16 * MIB, 2 * MIB, (d) => Object.assign(Object.create(d) as DiskBackend, {
    writeZeroes(offset: number, length: number, mayUnmap: boolean) { zeroed += length; d.writeZeroes(offset, length, mayUnmap); },
    discard(offset: number, length: number) { zeroed += length; d.discard(offset, length); },
  }));
  const { mem, q } = rig;
  mem.writeU32(HDR, VIRTIO_BLK_T_WRITE_ZEROES);
  const ranges = 0x3000;
  for (let i = 0; i < 63; i++) {
    mem.writeU64(ranges + 16 * i, 0n);
    mem.writeU32(ranges + 16 * i + 8, 16 * MIB / 512);
    mem.writeU32(ranges + 16 * i + 12, 0);
  }
  q.addChain([{ addr: HDR, len: 16 }, { addr: ranges, len: 63 * 16 }, { addr: STATUS, len: 1, writable: true }]);
  const t0 = performance.now();
  rig.transport.notify(0);
  const ms = performance.now() - t0;
  console.log(`one 1 KiB WRITE_ZEROES of 63 overlapping 16 MiB ranges: ${(zeroed / MIB).toFixed(0)} MiB zeroed in ${ms.toFixed(0)} ms, status ${mem.readU8(STATUS)}`);
  rig.close();
}

/**
 * A read of 254 x 17 MiB = 4.2 GiB into the same 17 MiB of guest RAM, from a sparse 8 GiB image: the
 * bytes the device asks its backend to move before it answers (the backend only counts them).
 */
function hugeRead(): void {
  let asked = 0;
  const rig = blockRig(8 * 1024 * MIB, 64 * MIB, (d) => Object.assign(Object.create(d) as DiskBackend, {
    read(_mem: GuestMemory, segments: readonly { len: number }[]) { for (const s of segments) asked += s.len; },
  }));
  const { mem, q } = rig;
  mem.writeU32(HDR, VIRTIO_BLK_T_IN);
  const data = Array.from({ length: 254 }, () => ({ addr: 16 * MIB, len: 17 * MIB, writable: true }));
  q.addChain([{ addr: HDR, len: 16 }, ...data, { addr: STATUS, len: 1, writable: true }]);
  mem.writeU8(STATUS, 0xff);
  rig.transport.notify(0);
  console.log(`one read of 4.2 GiB: ${(asked / MIB).toFixed(0)} MiB asked of the disk, status ${mem.readU8(STATUS)}, device status 0x${rig.transport.deviceStatus.toString(16)} (0x4f: needs reset)`);
  rig.close();
}

/** A full queue of legal 16 MiB reads (4 GiB): the disk work one kick does before the device lets others run. */
function fullQueueOfReads(): void {
  let asked = 0;
  const rig = blockRig(8 * 1024 * MIB, 64 * MIB, (d) => Object.assign(Object.create(d) as DiskBackend, {
    read(_mem: GuestMemory, segments: readonly { len: number }[]) { for (const s of segments) asked += s.len; },
  }));
  const { mem, q } = rig;
  mem.writeU32(HDR, VIRTIO_BLK_T_IN);
  const head = q.addChain([{ addr: HDR, len: 16 }, { addr: 16 * MIB, len: 16 * MIB, writable: true }, { addr: STATUS, len: 1, writable: true }]);
  for (let i = 1; i < 256; i++) q.publish(head);
  timer.armed = false;
  rig.transport.notify(0);
  const firstKick = asked;
  let turns = 1;
  while (timer.armed) {
    timer.armed = false;
    (rig.transport as { timerFired?: () => void }).timerFired?.();
    turns++;
  }
  console.log(`one kick with 256 reads of 16 MiB queued: ${(firstKick / MIB).toFixed(0)} MiB asked of the disk before the device yields (${turns} turns for all ${(asked / MIB).toFixed(0)} MiB)`);
  rig.close();
}

try {
  unclaimedAccesses(1_000_000);
  badRegisterWrites(100_000);
  longChains(32768);
  longChains(1);
  overlappingWriteZeroes();
  hugeRead();
  fullQueueOfReads();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
