import { test } from "node:test";
import assert from "node:assert/strict";
import { GuestMemory } from "../memory/guest-memory.js";
import { Serial16550 } from "./legacy/serial.js";
import { I8042 } from "./legacy/i8042.js";
import { CmosRtc } from "./legacy/rtc.js";
import { MmioTransport } from "./virtio/mmio-transport.js";
import { VirtioRng } from "./virtio/rng/rng-device.js";
import { CountingInterrupt, FakeMmioDriver, FakeVirtqueue } from "./virtio/testing/fake-driver.js";

const u8 = (...b: number[]) => Uint8Array.from(b);

test("serial: registers, FIFO and pending input survive save/restore; the IRQ line follows", () => {
  const levels: boolean[] = [];
  const a = new Serial16550({ irq: { setLevel: (l) => levels.push(l), trigger() {} }, output: () => {} });
  a.write(3, u8(0x03)); // LCR 8N1
  a.write(4, u8(0x08)); // MCR OUT2
  a.write(1, u8(0x01)); // IER: RX data
  a.enqueueInput(u8(0x41, 0x42));
  const saved = JSON.parse(JSON.stringify(a.saveState()));
  const seen: boolean[] = [];
  const b = new Serial16550({ irq: { setLevel: (l) => seen.push(l), trigger() {} }, output: () => {} });
  b.restoreState(saved);
  assert.deepEqual(b.saveState(), a.saveState());
  assert.deepEqual(seen, [true], "the restored UART raises its pending RX interrupt");
  const rbr = u8(0);
  b.read(0, rbr);
  assert.equal(rbr[0], 0x41);
});

test("serial, i8042, rtc: a bad saved field is refused with its name and changes nothing", () => {
  const s = new Serial16550({ irq: { setLevel() {}, trigger() {} }, output: () => {} });
  const before = s.saveState();
  assert.throws(() => s.restoreState({ ...before, lcr: 300 }), /serial: saved "lcr"/);
  assert.throws(() => s.restoreState({ ...before, rxFifo: new Array(100).fill(1) }), /serial: saved "rxFifo"/);
  assert.throws(() => s.restoreState(null), /serial: saved state is not an object/);
  assert.deepEqual(s.saveState(), before);
  const k = new I8042({ onReset() {} });
  assert.throws(() => k.restoreState({ ...k.saveState(), awaitingParameter: 0x12 }), /awaitingParameter/);
  const r = new CmosRtc({ clock: () => new Date(0) });
  assert.throws(() => r.restoreState({ ...r.saveState(), offsetMs: "x" }), /rtc: saved "offsetMs"/);
});

test("i8042 and rtc round trip", () => {
  const k = new I8042({ onReset() {} });
  k.write(4, u8(0x60));
  k.write(0, u8(0x47)); // CTR
  k.sendCtrlAltDel();
  const k2 = new I8042({ onReset() {} });
  k2.restoreState(JSON.parse(JSON.stringify(k.saveState())));
  assert.deepEqual(k2.saveState(), k.saveState());
  const clock = () => new Date(Date.UTC(2020, 0, 1));
  const r = new CmosRtc({ clock });
  r.write(0, u8(0x0b));
  r.write(1, u8(0x06));
  const r2 = new CmosRtc({ clock });
  r2.restoreState(JSON.parse(JSON.stringify(r.saveState())));
  assert.deepEqual(r2.saveState(), r.saveState());
});

test("virtio-mmio: an active device resumes at its saved ring positions, without a reset", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: 0x40000 }]);
  const fill = (d: Uint8Array) => d.fill(7);
  const a = new MmioTransport(new VirtioRng({ source: { fill } }), { mem, interrupt: new CountingInterrupt() });
  const q = new FakeVirtqueue(mem, 16, 0x1000);
  new FakeMmioDriver(a).initialize([q]);
  q.addChain([{ addr: 0x8000, len: 8, writable: true }]);
  a.notify(0);
  assert.equal(q.takeUsed().length, 1);
  const saved = JSON.parse(JSON.stringify(a.saveState()));

  const b = new MmioTransport(new VirtioRng({ source: { fill } }), { mem, interrupt: new CountingInterrupt() });
  b.restoreState(saved);
  assert.equal(b.deviceStatus, 0xf);
  const head = q.addChain([{ addr: 0x9000, len: 8, writable: true }]);
  b.notify(0);
  assert.deepEqual(q.takeUsed(), [{ id: head, len: 8 }], "the second request is served, not the first again");
});

test("virtio-mmio: a saved state for another device or with bad rings is refused", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: 0x40000 }]);
  const t = () => new MmioTransport(new VirtioRng({ source: { fill() {} } }), { mem, interrupt: new CountingInterrupt(), name: "rng" });
  const good = t().saveState();
  assert.throws(() => t().restoreState({ ...good, deviceType: 2 }), /rng: the snapshot holds a different device type/);
  assert.throws(() => t().restoreState({ ...good, queues: [] }), /holds 0 queues/);
  assert.throws(() => t().restoreState({ ...good, deviceConfig: "ff" }), /rng: its configuration differs from the snapshot's/);
  const a = t();
  const q = new FakeVirtqueue(mem, 16, 0x1000);
  new FakeMmioDriver(a).initialize([q]);
  const s = a.saveState() as { queues: { desc: number[] }[] };
  s.queues[0].desc = [0x7fff_0000, 0];
  assert.throws(() => t().restoreState(s), /rng: cannot resume the device: .*outside guest RAM/);
});

test("virtio-blk: a snapshot of a drive is refused onto an image of another size", async () => {
  const { VirtioBlock } = await import("./virtio/block/block-device.js");
  const { MemoryDisk } = await import("./virtio/block/memory-disk.js");
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: 0x40000 }]);
  const blk = (sectors: number) => new MmioTransport(new VirtioBlock({ disk: new MemoryDisk(new Uint8Array(sectors * 512)) }), { mem, interrupt: new CountingInterrupt(), name: "virtio-blk rootfs" });
  const a = blk(8);
  new FakeMmioDriver(a).initialize([new FakeVirtqueue(mem, 16, 0x1000)]);
  const saved = JSON.parse(JSON.stringify(a.saveState()));
  blk(8).restoreState(saved);
  assert.throws(() => blk(16).restoreState(saved), /virtio-blk rootfs: its configuration differs from the snapshot's \(a drive image of another size/);
});
