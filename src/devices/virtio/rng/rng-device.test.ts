import { test } from "node:test";
import assert from "node:assert/strict";
import { GuestMemory } from "../../../memory/guest-memory.js";
import { MmioTransport } from "../mmio-transport.js";
import { CountingInterrupt, FakeMmioDriver, FakeTimer, FakeVirtqueue } from "../testing/fake-driver.js";
import { getrandomSource } from "./getrandom-source.js";
import { MAX_ENTROPY_PER_REQUEST, VirtioRng, type EntropySource } from "./rng-device.js";

function boot(source: EntropySource) {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: 0x40000 }]);
  const irq = new CountingInterrupt();
  const rng = new VirtioRng({ source });
  const transport = new MmioTransport(rng, { mem, interrupt: irq });
  const q = new FakeVirtqueue(mem, 16, 0x1000);
  assert.equal(new FakeMmioDriver(transport).initialize([q]), 0xf);
  return { mem, irq, rng, transport, q };
}

test("fills writable buffers with host random bytes and interrupts", () => {
  const { mem, irq, transport, q } = boot(getrandomSource);
  const head = q.addChain([{ addr: 0x8000, len: 64, writable: true }, { addr: 0x9000, len: 64, writable: true }]);
  transport.notify(0);
  assert.deepEqual(q.takeUsed(), [{ id: head, len: 128 }]);
  assert.ok(mem.read(0x8000, 64).some((b) => b !== 0) && mem.read(0x9000, 64).some((b) => b !== 0));
  assert.equal(irq.triggers, 1);
});

test("caps one request and refuses readable buffers", () => {
  const { rng, transport, q } = boot({ fill: (d) => d.fill(7) });
  const big = q.addChain([{ addr: 0x10000, len: 0x30000 - 0x100, writable: true }]);
  const bad = q.addChain([{ addr: 0x8000, len: 4 }, { addr: 0x9000, len: 4, writable: true }]);
  transport.notify(0);
  assert.deepEqual(q.takeUsed(), [{ id: big, len: MAX_ENTROPY_PER_REQUEST }, { id: bad, len: 0 }]);
  assert.equal(rng.metrics.invalidRequests, 1);
});

test("a failing entropy source completes the request empty, never throws", () => {
  const { rng, transport, q } = boot({ fill: () => { throw new Error("no entropy"); } });
  const head = q.addChain([{ addr: 0x8000, len: 16, writable: true }]);
  transport.notify(0);
  assert.deepEqual(q.takeUsed(), [{ id: head, len: 0 }]);
  assert.equal(rng.metrics.hostErrors, 1);
});

test("the rate limiter holds entropy requests back, counts it, and the timer lets them go on", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: 0x40000 }]);
  const timer = new FakeTimer();
  const rng = new VirtioRng({ source: { fill: (d) => d.fill(1) }, timer, rateLimiter: { bandwidth: { size: 100, refill_time: 60_000 } } });
  const transport = new MmioTransport(rng, { mem, interrupt: new CountingInterrupt() });
  const q = new FakeVirtqueue(mem, 16, 0x1000);
  assert.equal(new FakeMmioDriver(transport).initialize([q]), 0xf);
  for (let i = 0; i < 3; i++) q.addChain([{ addr: 0x8000 + i * 0x100, len: 40, writable: true }]);
  transport.notify(0);
  assert.deepEqual(q.takeUsed().map((u) => u.len), [40, 40], "100 bytes in the bucket: two requests of 40");
  assert.equal(rng.metrics.entropy_rate_limiter_throttled, 1);
  assert.ok(timer.armedMs! > 0);
  rng.updateRateLimiter({ bandwidth: { size: 0, refill_time: 0 } });
  assert.ok(timer.take());
  transport.timerFired();
  assert.deepEqual(q.takeUsed().map((u) => u.len), [40]);
});
