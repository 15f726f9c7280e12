import { test } from "node:test";
import assert from "node:assert/strict";
import { LOG_BURST } from "../../log-rate-limit.js";
import { GuestMemory } from "../../../memory/guest-memory.js";
import { guestMemoryOver, mapAnonymous, unmap } from "../../../memory/host-mapping.js";
import { smapsOf } from "../../../memory/testing/smaps.js";
import { mprotect } from "../../../sys/libc.js";
import { MmioTransport } from "../mmio-transport.js";
import { CountingInterrupt, FakeMmioDriver, FakeVirtqueue } from "../testing/fake-driver.js";
import {
  BalloonError, MAX_PFNS_PER_CHAIN, VIRTIO_BALLOON_F_DEFLATE_ON_OOM, VIRTIO_BALLOON_F_REPORTING, VIRTIO_BALLOON_F_STATS_VQ, VirtioBalloon,
  type BalloonDeviceOptions, type PageDiscarder,
} from "./balloon-device.js";
import { madviseDiscarder } from "./madvise-discarder.js";

const MiB = 1 << 20;
const MEM = 16 * MiB;
const QUEUE_SIZE = 16;
/** Where the fake driver keeps its PFN arrays and stats buffer. */
const PFN_ARRAYS = 0x20000;
const STATS_BUFFER = 0x80000;

function boot(mem: GuestMemory, options: Partial<BalloonDeviceOptions> & { discarder: PageDiscarder }) {
  const irq = new CountingInterrupt();
  const balloon = new VirtioBalloon({ amountMib: 0, deflateOnOom: false, statsPollingIntervalS: 1, freePageReporting: true, guestMemMib: MEM / MiB, ...options });
  const transport = new MmioTransport(balloon, { mem, interrupt: irq });
  const queues = balloon.queueMaxSizes.map((_, i) => new FakeVirtqueue(mem, QUEUE_SIZE, 0x1000 + i * 0x2000));
  const driver = new FakeMmioDriver(transport);
  assert.equal(driver.initialize(queues), 0xf);
  return { irq, balloon, transport, queues, driver };
}

/**
 * Real anonymous host memory as guest RAM, so madvise really frees pages and RSS shows it. Between two inaccessible
 * guard pages: otherwise the kernel may merge a neighbouring anonymous mapping (a malloc arena) into the same VMA, and
 * that VMA's Rss, which the tests read, moves with the neighbour's allocations (this made the reporting test fail
 * once in a while: 1948 of 2048 kB).
 */
function withRealRam(fn: (mem: GuestMemory, hostAddr: bigint) => void): void {
  const base = mapAnonymous(MEM + 2 * GUARD);
  const hostAddr = base + BigInt(GUARD);
  try {
    if (mprotect(base, GUARD, PROT_NONE) !== 0 || mprotect(hostAddr + BigInt(MEM), GUARD, PROT_NONE) !== 0) throw new Error("mprotect of the guard pages failed");
    fn(guestMemoryOver([{ guestAddr: 0, size: MEM, hostAddr }]), hostAddr);
  } finally {
    unmap(base, MEM + 2 * GUARD);
  }
}

const GUARD = 4096;
const PROT_NONE = 0;

/** Publishes inflate (or deflate) buffers naming every 4 KiB page of [from, to), 256 PFNs per buffer, as Linux does. */
function givePages(mem: GuestMemory, q: FakeVirtqueue, from: number, to: number, arrays = PFN_ARRAYS): number[] {
  const heads: number[] = [];
  let at = arrays;
  for (let page = from; page < to; ) {
    const n = Math.min(MAX_PFNS_PER_CHAIN, (to - page) / 4096);
    for (let i = 0; i < n; i++) mem.writeU32(at + 4 * i, page / 4096 + i);
    heads.push(q.addChain([{ addr: at, len: 4 * n }]));
    at += 4 * n;
    page += n * 4096;
  }
  return heads;
}

const rssKb = (addr: bigint) => smapsOf(addr).kb.Rss;

test("inflated pages go back to the host: the VMM's RSS falls and the guest later reads zeros", () => {
  withRealRam((mem, hostAddr) => {
    const { balloon, transport, queues, irq } = boot(mem, { discarder: madviseDiscarder(mem) });
    mem.fill(4 * MiB, 8 * MiB, 0xa5);
    const heads = givePages(mem, queues[0], 4 * MiB, 12 * MiB);
    assert.equal(heads.length, 8);
    // Measured once the driver's side is written (its page lists and rings touch pages of their own): what falls
    // after the kick is the inflated pages alone.
    const before = rssKb(hostAddr);
    assert.ok(before >= 8 * 1024, `RSS ${before} kB after touching 8 MiB`);
    const triggers = irq.triggers;
    transport.notify(0);
    assert.deepEqual(queues[0].takeUsed(), heads.map((id) => ({ id, len: 0 })));
    assert.ok(irq.triggers > triggers);
    const after = rssKb(hostAddr);
    assert.ok(before - after >= 8 * 1024 - 64, `RSS ${before} kB -> ${after} kB: 8 MiB were inflated`);
    assert.equal(balloon.metrics.inflatedPages, 2048);
    assert.ok(mem.read(4 * MiB, 8 * MiB).every((b) => b === 0));
    process.stdout.write(`# RSS of the guest RAM mapping: ${before} kB before inflating 8 MiB, ${after} kB after\n`);
  });
});

test("free page reporting gives reported ranges back; deflate returns buffers", () => {
  withRealRam((mem, hostAddr) => {
    const { balloon, transport, queues } = boot(mem, { discarder: madviseDiscarder(mem) });
    mem.fill(12 * MiB, 2 * MiB, 1);
    // Linux reports free blocks as device-writable buffers on reporting_vq (queue 3 with stats: inflate, deflate, stats, reporting).
    const head = queues[3].addChain([{ addr: 12 * MiB, len: 2 * MiB, writable: true }]);
    // Measured once the driver's side is written (its rings touch pages of their own), as the inflate test does.
    const before = rssKb(hostAddr);
    transport.notify(3);
    assert.deepEqual(queues[3].takeUsed(), [{ id: head, len: 0 }]);
    assert.ok(before - rssKb(hostAddr) >= 2 * 1024 - 64, `RSS ${before} kB -> ${rssKb(hostAddr)} kB`);
    assert.equal(balloon.metrics.reportedBytes, 2 * MiB);

    const back = givePages(mem, queues[1], 4 * MiB, 5 * MiB);
    transport.notify(1);
    assert.deepEqual(queues[1].takeUsed(), back.map((id) => ({ id, len: 0 })));
    assert.equal(balloon.metrics.deflateChains, back.length);
  });
});

test("the target goes to config space with a configuration interrupt; the driver writes `actual`", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: MEM }]);
  const b = new VirtioBalloon({ amountMib: 4, deflateOnOom: false, statsPollingIntervalS: 0, freePageReporting: false, guestMemMib: 16, discarder: { discard() {} } });
  assert.throws(() => b.setTargetMib(8), (e: Error) => e instanceof BalloonError && e.message === "Device not activated yet.");
  const { balloon, transport, driver } = boot(mem, { amountMib: 4, discarder: { discard() {} } });
  assert.equal(driver.read(0x100), 4 * 256);
  balloon.setTargetMib(10);
  transport.configChanged();
  assert.equal(driver.read(0x100), 10 * 256);
  assert.equal(driver.read(0x060) & 2, 2, "configuration change interrupt");
  driver.write(0x104, 7 * 256);
  driver.write(0x100, 1234); // num_pages is the device's: ignored
  assert.equal(driver.read(0x104), 7 * 256);
  assert.equal(driver.read(0x100), 10 * 256);
  assert.deepEqual([balloon.statistics().target_mib, balloon.statistics().actual_mib], [10, 7]);
  assert.throws(() => balloon.setTargetMib(17), /less than 16MiB/);
  assert.equal(balloon.targetMib, 10);
});

test("features and queues follow the config (Firecracker's: deflate_on_oom, stats when polling, reporting)", () => {
  const make = (o: Partial<BalloonDeviceOptions>) => new VirtioBalloon({ amountMib: 0, deflateOnOom: false, statsPollingIntervalS: 0, freePageReporting: false, guestMemMib: 16, discarder: { discard() {} }, ...o });
  const plain = make({});
  assert.equal(plain.queueMaxSizes.length, 2);
  assert.equal(plain.features & (VIRTIO_BALLOON_F_DEFLATE_ON_OOM | VIRTIO_BALLOON_F_STATS_VQ | VIRTIO_BALLOON_F_REPORTING), 0n);
  const all = make({ deflateOnOom: true, statsPollingIntervalS: 5, freePageReporting: true });
  assert.equal(all.queueMaxSizes.length, 4);
  assert.equal(all.features & (VIRTIO_BALLOON_F_DEFLATE_ON_OOM | VIRTIO_BALLOON_F_STATS_VQ | VIRTIO_BALLOON_F_REPORTING), VIRTIO_BALLOON_F_DEFLATE_ON_OOM | VIRTIO_BALLOON_F_STATS_VQ | VIRTIO_BALLOON_F_REPORTING);
  assert.throws(() => make({ amountMib: 17 }), /less than 16MiB/);
  assert.throws(() => plain.statistics(), /not enabled/);
  assert.throws(() => plain.setStatsPollingInterval(3), /cannot be enabled\/disabled/);
  assert.throws(() => all.setStatsPollingInterval(0), /cannot be enabled\/disabled/);
});

test("statistics: the device holds the driver's buffer and returns it to ask for fresh figures", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: MEM }]);
  const { balloon, transport, queues } = boot(mem, { discarder: { discard() {} } });
  const writeStats = (stats: [number, bigint][]) => stats.forEach(([tag, val], i) => {
    mem.writeU16(STATS_BUFFER + 10 * i, tag);
    mem.writeU64(STATS_BUFFER + 10 * i + 2, val);
  });
  writeStats([[4, 100n * BigInt(MiB)], [5, 128n * BigInt(MiB)], [2, 7n], [99, 1n]]);
  const first = queues[2].addChain([{ addr: STATS_BUFFER, len: 40 }]);
  transport.notify(2);
  assert.deepEqual(queues[2].takeUsed(), [], "held until the next poll");
  assert.deepEqual(balloon.statistics(), { target_pages: 0, actual_pages: 0, target_mib: 0, actual_mib: 0, free_memory: 100 * MiB, total_memory: 128 * MiB, major_faults: 7 });
  balloon.requestStats();
  assert.deepEqual(queues[2].takeUsed(), [{ id: first, len: 0 }]);
  balloon.requestStats(); // nothing held: nothing to return
  assert.deepEqual(queues[2].takeUsed(), []);
  writeStats([[4, 90n * BigInt(MiB)]]);
  const second = queues[2].addChain([{ addr: STATS_BUFFER, len: 10 }]);
  transport.notify(2);
  assert.equal(balloon.statistics().free_memory, 90 * MiB);
  assert.equal(balloon.statistics().total_memory, 128 * MiB);
  balloon.setStatsPollingInterval(10); // a new interval asks for figures at once
  assert.deepEqual(queues[2].takeUsed(), [{ id: second, len: 0 }]);
  assert.equal(balloon.statsPollingIntervalS, 10);
});

test("a stats buffer Linux primes and kicks before DRIVER_OK is taken when the device starts", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: MEM }]);
  const balloon = new VirtioBalloon({ amountMib: 0, deflateOnOom: false, statsPollingIntervalS: 1, freePageReporting: true, guestMemMib: MEM / MiB, discarder: { discard() {} } });
  const transport = new MmioTransport(balloon, { mem, interrupt: new CountingInterrupt() });
  const queues = balloon.queueMaxSizes.map((_, i) => new FakeVirtqueue(mem, QUEUE_SIZE, 0x1000 + i * 0x2000));
  mem.writeU16(STATS_BUFFER, 4);
  mem.writeU64(STATS_BUFFER + 2, 64n * BigInt(MiB));
  // virtio_balloon.c init_vqs: the buffer goes in and the queue is kicked before virtio_device_ready.
  queues[2].addChain([{ addr: STATS_BUFFER, len: 10 }]);
  transport.notify(2);
  assert.equal(new FakeMmioDriver(transport).initialize(queues), 0xf);
  assert.equal(balloon.statistics().free_memory, 64 * MiB);
  assert.equal(balloon.metrics.statsUpdates, 1);
});

test("hostile buffers are refused one by one, with bounded work, and the device goes on", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: MEM }]);
  const discarded: [number, number][] = [];
  const discarder: PageDiscarder = {
    discard(addr, len) {
      if (!mem.contains(addr, len)) throw new Error("outside guest RAM");
      discarded.push([addr, len]);
    },
  };
  const { balloon, transport, queues } = boot(mem, { discarder });
  const tooMany = queues[0].addChain([{ addr: PFN_ARRAYS, len: 4 * (MAX_PFNS_PER_CHAIN + 1) }]);
  const ragged = queues[0].addChain([{ addr: PFN_ARRAYS, len: 6 }]);
  mem.writeU32(0x40000, 0xffff_fff0);
  const outside = queues[0].addChain([{ addr: 0x40000, len: 4 }]);
  // Unsorted, duplicated and contiguous PFNs become two ranges.
  [0x105, 0x100, 0x101, 0x103, 0x102, 0x104, 0x100, 0x200].forEach((pfn, i) => mem.writeU32(0x50000 + 4 * i, pfn));
  const good = queues[0].addChain([{ addr: 0x50000, len: 32 }]);
  transport.notify(0);
  assert.deepEqual(queues[0].takeUsed().map((u) => u.id), [tooMany, ragged, outside, good]);
  assert.equal(balloon.metrics.invalidRequests, 2);
  assert.equal(balloon.metrics.discardFailures, 1);
  assert.deepEqual(discarded, [[0x100000, 6 * 4096], [0x200000, 4096]]);
  assert.equal(transport.deviceStatus & 0x40, 0, "no DEVICE_NEEDS_RESET");
  const bigStats = queues[2].addChain([{ addr: STATS_BUFFER, len: 10 * 257 }]);
  transport.notify(2);
  assert.equal(balloon.metrics.invalidRequests, 3);
  balloon.requestStats();
  assert.deepEqual(queues[2].takeUsed(), [{ id: bigStats, len: 0 }]);
});

test("the stats timer: armed at activation with the polling interval, each expiry asks the driver for statistics", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: MEM }]);
  const armed: number[] = [];
  let reads = 0;
  const timer = { fd: 99, arm: (s: number) => void armed.push(s), read: () => void reads++, close() {} };
  let onTimer: (() => void) | undefined;
  const balloon = new VirtioBalloon({ amountMib: 0, deflateOnOom: false, statsPollingIntervalS: 3, freePageReporting: false, guestMemMib: 16, discarder: { discard() {} }, statsTimer: timer });
  balloon.attachHost({ watch: (fd, cb) => { assert.equal(fd, 99); onTimer = () => cb({ readable: true, writable: false, hangup: false }); }, unwatch() {} });
  const transport = new MmioTransport(balloon, { mem, interrupt: new CountingInterrupt() });
  const queues = balloon.queueMaxSizes.map((_, i) => new FakeVirtqueue(mem, QUEUE_SIZE, 0x1000 + i * 0x2000));
  assert.equal(new FakeMmioDriver(transport).initialize(queues), 0xf);
  assert.deepEqual(armed, [3]);
  const head = queues[2].addChain([{ addr: STATS_BUFFER, len: 10 }]);
  transport.notify(2);
  onTimer!();
  assert.equal(reads, 1);
  assert.deepEqual(queues[2].takeUsed(), [{ id: head, len: 0 }]);
  balloon.setStatsPollingInterval(7);
  assert.deepEqual(armed, [3, 7]);
});

test("a driver that declines statistics and reporting sets up two queues, and the balloon still works", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: MEM }]);
  const discarded: number[] = [];
  const balloon = new VirtioBalloon({ amountMib: 0, deflateOnOom: true, statsPollingIntervalS: 1, freePageReporting: true, guestMemMib: 16, discarder: { discard: (addr) => void discarded.push(addr) } });
  const transport = new MmioTransport(balloon, { mem, interrupt: new CountingInterrupt() });
  const driver = new FakeMmioDriver(transport);
  const queues = [0, 1].map((i) => new FakeVirtqueue(mem, QUEUE_SIZE, 0x1000 + i * 0x2000));
  // A driver with init_on_free declines VIRTIO_BALLOON_F_REPORTING (Linux virtballoon_validate), one without stats declines STATS_VQ.
  const features = driver.offeredFeatures() & ~(VIRTIO_BALLOON_F_STATS_VQ | VIRTIO_BALLOON_F_REPORTING);
  assert.equal(driver.initialize(queues, features), 0xf);
  givePages(mem, queues[0], 0x100000, 0x102000);
  transport.notify(0);
  assert.deepEqual(discarded, [0x100000]);
  transport.notify(3); // a queue this driver never set up: nothing happens
  assert.equal(transport.deviceStatus & 0x40, 0);
});

test("bad buffers a guest sends without end log a bounded number of lines", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: MEM }]);
  const lines: string[] = [];
  const { transport, queues } = boot(mem, { discarder: { discard() {} }, logger: (_level, msg) => lines.push(msg) });
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < 4; i++) queues[0].addChain([{ addr: PFN_ARRAYS, len: 6 }]);
    transport.notify(0);
    queues[0].takeUsed();
  }
  assert.ok(lines.length <= LOG_BURST, `${lines.length} lines for 200 bad inflate chains`);
});

test("a snapshot keeps the balloon working: target, actual, polling interval, held stats buffer and last figures", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: MEM }]);
  const { balloon, transport, queues, driver } = boot(mem, { amountMib: 2, discarder: { discard() {} } });
  balloon.setTargetMib(10);
  transport.configChanged();
  driver.write(0x104, 6 * 256);
  mem.writeU16(STATS_BUFFER, 4);
  mem.writeU64(STATS_BUFFER + 2, 77n * BigInt(MiB));
  const held = queues[2].addChain([{ addr: STATS_BUFFER, len: 10 }]);
  transport.notify(2);
  balloon.setStatsPollingInterval(5);
  assert.deepEqual(queues[2].takeUsed(), [{ id: held, len: 0 }]);
  const again = queues[2].addChain([{ addr: STATS_BUFFER, len: 10 }]);
  transport.notify(2);
  // Through JSON, as the state file holds it.
  const saved = JSON.parse(JSON.stringify({ device: balloon.saveState(), transport: transport.saveState() }));

  // The restored VM's balloon is built from the boot configuration (amount_mib 2, interval 1), then given its state.
  const armed: number[] = [];
  const timer = { fd: 98, arm: (s: number) => void armed.push(s), read() {}, close() {} };
  const restored = new VirtioBalloon({ amountMib: 2, deflateOnOom: false, statsPollingIntervalS: 1, freePageReporting: true, guestMemMib: MEM / MiB, discarder: { discard() {} }, statsTimer: timer });
  const irq = new CountingInterrupt();
  const transport2 = new MmioTransport(restored, { mem, interrupt: irq });
  // Without the device's own state its config space (target 2 MiB) differs from the saved one: refused.
  assert.throws(() => new MmioTransport(new VirtioBalloon({ amountMib: 2, deflateOnOom: false, statsPollingIntervalS: 1, freePageReporting: true, guestMemMib: 16, discarder: { discard() {} } }), { mem, interrupt: irq }).restoreState(saved.transport), /configuration differs/);
  // As the device thread restores a device (vmm/device-thread/snapshot.ts): its own state, then its transport is told
  // the config space changed (not active yet: no interrupt), then the transport's state.
  restored.restoreState(saved.device);
  transport2.configChanged();
  transport2.restoreState(saved.transport);
  const driver2 = new FakeMmioDriver(transport2);
  assert.equal(driver2.read(0x100), 10 * 256);
  assert.equal(driver2.read(0x104), 6 * 256);
  assert.equal(restored.targetMib, 10);
  assert.equal(restored.statsPollingIntervalS, 5);
  assert.deepEqual(armed, [5], "polling goes on at the PATCHed interval");
  assert.deepEqual(restored.statistics(), { target_pages: 2560, actual_pages: 1536, target_mib: 10, actual_mib: 6, free_memory: 77 * MiB });
  // The buffer held at the snapshot is the one returned at the next poll.
  restored.requestStats();
  assert.deepEqual(queues[2].takeUsed(), [{ id: again, len: 0 }]);
  restored.setTargetMib(3);
  transport2.configChanged();
  assert.equal(driver2.read(0x100), 3 * 256);

  const other = new VirtioBalloon({ amountMib: 0, deflateOnOom: true, statsPollingIntervalS: 1, freePageReporting: true, guestMemMib: 16, discarder: { discard() {} } });
  assert.throws(() => other.restoreState(saved.device), /offered other features/);
  const fresh = () => new VirtioBalloon({ amountMib: 0, deflateOnOom: false, statsPollingIntervalS: 1, freePageReporting: true, guestMemMib: 16, discarder: { discard() {} } });
  assert.throws(() => fresh().restoreState({ ...saved.device, targetPages: 17 * 256 }), /"targetPages" must be an integer in \[0, 4096\]/);
  assert.throws(() => fresh().restoreState({ ...saved.device, statsHead: 999 }), /"statsHead" must be null or a descriptor index below 256/);
  assert.throws(() => fresh().restoreState({ ...saved.device, latestStats: { nonsense: 1 } }), /statistic "nonsense"/);
});
