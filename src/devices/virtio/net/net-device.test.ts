import { test } from "node:test";
import assert from "node:assert/strict";
import { GuestMemory } from "../../../memory/guest-memory.js";
import { MmioTransport } from "../mmio-transport.js";
import { readSegments, writeSegments, type GuestSegment } from "../queue/chain-buffers.js";
import { CountingInterrupt, FakeMmioDriver, FakeTimer, FakeVirtqueue } from "../testing/fake-driver.js";
import type { RateLimiterSettings } from "../../rate-limiter.js";
import { formatMac, generateMac, parseMac } from "./mac.js";
import type { GuestOffloads, NetBackend } from "./net-backend.js";
import type { FrameDetour } from "./frame-detour.js";
import { RX_QUEUE, TX_QUEUE, VIRTIO_NET_F_GUEST_CSUM, VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_MAC, VIRTIO_NET_F_STATUS, VirtioNet } from "./net-device.js";

/** A backend with a queue of frames to deliver and a list of frames sent. */
class FakeLink implements NetBackend {
  readonly fd = 99;
  incoming: Uint8Array[] = [];
  sent: Uint8Array[] = [];
  offloads: GuestOffloads | null = null;
  full = false;
  constructor(readonly supportedOffloads: GuestOffloads) {}
  setOffloads(o: GuestOffloads): void { this.offloads = o; }
  receive(mem: GuestMemory, segments: readonly GuestSegment[]): number | null {
    const frame = this.incoming.shift();
    if (!frame) return null;
    const room = segments.reduce((n, s) => n + s.len, 0);
    return writeSegments(mem, segments, frame.subarray(0, room));
  }
  send(mem: GuestMemory, segments: readonly GuestSegment[]): boolean {
    if (this.full) return false;
    this.sent.push(readSegments(mem, segments));
    return true;
  }
  close(): void {}
}

function boot(offloads: GuestOffloads = { csum: true, tso4: true, tso6: false }, limits: { rx?: RateLimiterSettings; tx?: RateLimiterSettings } = {}, detour?: FrameDetour) {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: 0x40000 }]);
  const link = new FakeLink(offloads);
  const timer = new FakeTimer();
  const net = new VirtioNet({ backend: link, mac: parseMac("52:54:00:12:34:56"), timer, rxRateLimiter: limits.rx, txRateLimiter: limits.tx, detour });
  const irq = new CountingInterrupt();
  const transport = new MmioTransport(net, { mem, interrupt: irq });
  const rx = new FakeVirtqueue(mem, 16, 0x1000);
  const tx = new FakeVirtqueue(mem, 16, 0x2000);
  const driver = new FakeMmioDriver(transport);
  assert.equal(driver.initialize([rx, tx]), 0xf);
  return { mem, link, net, irq, transport, rx, tx, driver, timer };
}

const frame = (n: number, fill: number) => new Uint8Array(n).fill(fill);

test("config space has the MAC and LINK_UP; offloads follow what the backend accepts", () => {
  const { driver, net, link } = boot();
  assert.equal(driver.read(0x100), 0x12_00_54_52);
  assert.equal(driver.read(0x104), 0x0001_5634);
  assert.ok(net.features & VIRTIO_NET_F_MAC && net.features & VIRTIO_NET_F_STATUS);
  assert.ok(net.features & VIRTIO_NET_F_GUEST_TSO4);
  assert.deepEqual(link.offloads, { csum: true, tso4: true, tso6: false });
  const plain = new VirtioNet({ backend: new FakeLink({ csum: false, tso4: false, tso6: false }) });
  assert.equal(plain.features & (VIRTIO_NET_F_GUEST_CSUM | VIRTIO_NET_F_GUEST_TSO4), 0n);
});

test("RX delivers waiting frames into guest buffers and sets num_buffers", () => {
  const { mem, link, net, transport, rx, irq } = boot();
  const a = rx.addChain([{ addr: 0x10000, len: 2048, writable: true }]);
  const b = rx.addChain([{ addr: 0x11000, len: 6, writable: true }, { addr: 0x12000, len: 2048, writable: true }]);
  transport.notify(RX_QUEUE);
  assert.equal(rx.takeUsed().length, 0, "no frame yet: buffers stay with the device");
  link.incoming.push(frame(100, 0xaa), frame(60, 0xbb));
  transport.hostReady();
  assert.deepEqual(rx.takeUsed(), [{ id: a, len: 100 }, { id: b, len: 60 }]);
  assert.equal(mem.readU16(0x10000 + 10), 1, "num_buffers = 1");
  assert.equal(mem.readU16(0x12000 + 4), 1, "num_buffers found across a descriptor split");
  assert.equal(mem.readU8(0x10000 + 50), 0xaa);
  assert.equal(net.metrics.rxFrames, 2);
  assert.ok(irq.triggers >= 1);
});

test("with no RX buffers the tap is not polled until the guest adds some", () => {
  const { link, transport, rx } = boot();
  assert.equal(transport.hostPollWanted(), true);
  link.incoming.push(frame(64, 1));
  transport.hostReady();
  assert.equal(transport.hostPollWanted(), false);
  const head = rx.addChain([{ addr: 0x10000, len: 2048, writable: true }]);
  rx.addChain([{ addr: 0x11000, len: 2048, writable: true }]);
  transport.notify(RX_QUEUE);
  assert.deepEqual(rx.takeUsed(), [{ id: head, len: 64 }]);
  assert.equal(transport.hostPollWanted(), true, "one buffer left: poll again");
});

test("TX sends each chain, header included; bad chains are completed and counted", () => {
  const { mem, link, net, transport, tx } = boot();
  mem.fill(0x10000, 12, 0);
  mem.fill(0x10100, 60, 0xcc);
  const good = tx.addChain([{ addr: 0x10000, len: 12 }, { addr: 0x10100, len: 60 }]);
  const short = tx.addChain([{ addr: 0x10000, len: 8 }]);
  const writable = tx.addChain([{ addr: 0x10000, len: 12 }, { addr: 0x10100, len: 60, writable: true }]);
  transport.notify(TX_QUEUE);
  assert.deepEqual(tx.takeUsed(), [{ id: good, len: 0 }, { id: short, len: 0 }, { id: writable, len: 0 }]);
  assert.equal(link.sent.length, 1);
  assert.equal(link.sent[0].length, 72);
  assert.equal(net.metrics.invalidRequests, 2);
  link.full = true;
  tx.addChain([{ addr: 0x10000, len: 72 }]);
  transport.notify(TX_QUEUE);
  assert.equal(net.metrics.txDropped, 1);
});

test("the TX rate limiter keeps frames on the ring until its timer, and counts it", () => {
  const { mem, link, net, transport, tx, timer } = boot(undefined, { tx: { bandwidth: { size: 200, refill_time: 60_000 } } });
  mem.fill(0x10000, 100, 0);
  for (let i = 0; i < 3; i++) tx.addChain([{ addr: 0x10000, len: 100 }]);
  transport.notify(TX_QUEUE);
  assert.equal(link.sent.length, 2, "200 bytes in the bucket: two frames of 100");
  assert.equal(tx.takeUsed().length, 2);
  assert.equal(net.metrics.tx_rate_limiter_throttled, 1);
  assert.ok(timer.armedMs! > 0);
  transport.notify(TX_QUEUE);
  assert.equal(link.sent.length, 2, "a kick while throttled sends nothing");
  assert.equal(net.metrics.tx_rate_limiter_throttled, 2);
  net.updateRateLimiters(undefined, { bandwidth: { size: 0, refill_time: 0 } });
  assert.ok(timer.take());
  transport.timerFired();
  assert.equal(link.sent.length, 3);
});

test("the RX rate limiter stops polling the tap until its timer", () => {
  const { link, net, transport, rx, timer } = boot(undefined, { rx: { ops: { size: 2, refill_time: 60_000 } } });
  for (let i = 0; i < 4; i++) rx.addChain([{ addr: 0x10000 + i * 0x1000, len: 2048, writable: true }]);
  link.incoming.push(frame(64, 1), frame(64, 2), frame(64, 3));
  transport.hostReady();
  assert.equal(rx.takeUsed().length, 2);
  assert.equal(transport.hostPollWanted(), false, "throttled: the tap is not polled");
  assert.equal(net.metrics.rx_rate_limiter_throttled, 1);
  assert.ok(timer.armedMs! > 0);
  net.updateRateLimiters({ ops: { size: 100, refill_time: 1000 } }, undefined);
  assert.ok(timer.take());
  transport.timerFired();
  assert.equal(rx.takeUsed().length, 1);
  assert.equal(transport.hostPollWanted(), true);
});

/** Claims frames whose first byte is 0xee and answers each with a frame of 0xdd, one per claimed frame. */
class EchoDetour implements FrameDetour {
  taken: Uint8Array[] = [];
  heads: number[] = [];
  private replies = 0;
  wants(head: Uint8Array): boolean {
    this.heads.push(head.length);
    return head[0] === 0xee;
  }
  take(frame: Uint8Array): void {
    this.taken.push(frame);
    this.replies++;
  }
  hasFrames(): boolean {
    return this.replies > 0;
  }
  nextFrame(): Uint8Array | null {
    if (this.replies === 0) return null;
    this.replies--;
    return frame(60, 0xdd);
  }
}

test("a detour takes the frames it claims before the tap, and its replies wait for RX buffers", () => {
  const detour = new EchoDetour();
  const { mem, link, transport, tx, rx } = boot(undefined, {}, detour);
  mem.fill(0x10000, 12, 0);
  mem.fill(0x10100, 100, 0xee);
  mem.fill(0x10200, 100, 0x11);
  tx.addChain([{ addr: 0x10000, len: 12 }, { addr: 0x10100, len: 100 }]);
  tx.addChain([{ addr: 0x10000, len: 12 }, { addr: 0x10200, len: 100 }]);
  transport.notify(TX_QUEUE);
  assert.equal(detour.taken.length, 1, "the 0xee frame went to the detour");
  assert.equal(detour.taken[0].length, 100, "without the virtio header");
  assert.deepEqual(detour.heads, [42, 42], "only the head is read to decide");
  assert.equal(link.sent.length, 1, "the other frame went to the tap");
  assert.equal(link.sent[0][12], 0x11);
  assert.equal(detour.hasFrames(), true, "no RX buffer yet: the reply waits");
  link.incoming.push(frame(70, 0xaa));
  const a = rx.addChain([{ addr: 0x20000, len: 2048, writable: true }]);
  const b = rx.addChain([{ addr: 0x21000, len: 2048, writable: true }]);
  transport.notify(RX_QUEUE);
  assert.deepEqual(rx.takeUsed(), [{ id: a, len: 72 }, { id: b, len: 70 }], "the detour's reply first, behind a 12-byte header");
  assert.equal(mem.readU8(0x20000), 0, "zeroed virtio_net_hdr flags");
  assert.equal(mem.readU16(0x20000 + 10), 1, "num_buffers = 1");
  assert.equal(mem.readU8(0x20000 + 12), 0xdd);
});

test("MAC parsing and generation", () => {
  assert.equal(formatMac(parseMac("AA:bb:0c:dd:ee:ff".replace("AA", "aa"))), "aa:bb:0c:dd:ee:ff");
  assert.throws(() => parseMac("aa:bb:cc:dd:ee"), /six colon-separated/);
  assert.throws(() => parseMac("01:00:5e:00:00:01"), /multicast/);
  const mac = generateMac();
  assert.equal(mac[0] & 3, 2, "locally administered unicast");
});
