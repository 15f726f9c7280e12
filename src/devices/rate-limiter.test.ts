import { test } from "node:test";
import assert from "node:assert/strict";
import { RateLimiter, REFILL_TIMER_MS, TokenBucket } from "./rate-limiter.js";

function clock(start = 1000) {
  const c = { t: start, now: () => c.t };
  return c;
}

test("a token bucket starts full, refills at size per refill_time, and never above size", () => {
  const c = clock();
  const b = new TokenBucket(100, 0, 1000, c.now);
  assert.deepEqual(b.reduce(100), { kind: "success" });
  assert.deepEqual(b.reduce(1), { kind: "failure" });
  c.t += 9; // 0.9 tokens: none yet
  assert.deepEqual(b.reduce(1), { kind: "failure" });
  c.t += 1;
  assert.deepEqual(b.reduce(1), { kind: "success" });
  c.t += 250;
  assert.equal(b.available(), 25);
  c.t += 10_000;
  assert.equal(b.available(), 100);
});

test("partial tokens are not lost between replenishments", () => {
  const c = clock();
  const b = new TokenBucket(3, 0, 1000, c.now); // one token per 333.3 ms
  b.reduce(3);
  for (let i = 0; i < 6; i++) {
    c.t += 200;
    b.available();
  }
  assert.equal(b.available(), 3, "1200 ms earns 3 tokens even when looked at every 200 ms");
});

test("the one-time burst is spent first and is not refilled", () => {
  const c = clock();
  const b = new TokenBucket(10, 50, 1000, c.now);
  assert.equal(b.available(), 60);
  assert.deepEqual(b.reduce(55), { kind: "success" });
  assert.equal(b.available(), 5);
  c.t += 5000;
  assert.equal(b.available(), 10);
});

test("more than the bucket holds succeeds once, and blocks the limiter while the debt is repaid", () => {
  const c = clock();
  const b = new TokenBucket(100, 0, 1000, c.now);
  assert.deepEqual(b.reduce(250), { kind: "over-consumption", ratio: 1.5 });
  const l = new RateLimiter({ bandwidth: { size: 100, refill_time: 1000 } }, c.now);
  assert.equal(l.consume(250, "bytes"), true);
  assert.equal(l.blockedFor(), 1500);
  assert.equal(l.consume(1, "bytes"), false);
  c.t += 1500;
  assert.equal(l.blockedFor(), 0);
});

test("an empty bucket blocks the limiter for the refill timer, both kinds, until it passes", () => {
  const c = clock();
  const l = new RateLimiter({ ops: { size: 2, refill_time: 1000 } }, c.now);
  assert.equal(l.consume(1, "ops"), true);
  assert.equal(l.consume(1, "ops"), true);
  assert.equal(l.consume(1, "ops"), false);
  assert.equal(l.blockedFor(), REFILL_TIMER_MS);
  assert.equal(l.consume(1, "bytes"), false, "blocked is blocked, whatever the kind (Firecracker: timer armed)");
  c.t += REFILL_TIMER_MS;
  assert.equal(l.consume(1, "ops"), false, "100 ms earns 0.2 ops");
  c.t += 400;
  assert.equal(l.consume(1, "ops"), true);
});

test("without buckets, or with size or refill_time 0, nothing is limited", () => {
  const c = clock();
  for (const l of [new RateLimiter(undefined, c.now), new RateLimiter({ ops: { size: 0, refill_time: 100 }, bandwidth: { size: 10, refill_time: 0 } }, c.now)]) {
    for (let i = 0; i < 1000; i++) assert.equal(l.consume(1 << 20, i % 2 ? "ops" : "bytes"), true);
  }
});

test("replenish gives back what a request took; update replaces, keeps or removes each bucket", () => {
  const c = clock();
  const l = new RateLimiter({ ops: { size: 1, refill_time: 1000 }, bandwidth: { size: 1000, refill_time: 1000 } }, c.now);
  assert.equal(l.consume(1, "ops"), true);
  l.replenish(1, "ops");
  assert.equal(l.consume(1, "ops"), true);
  assert.equal(l.consume(1, "ops"), false);
  l.update({ ops: { size: 5, refill_time: 1000 } });
  c.t += 100;
  for (let i = 0; i < 5; i++) assert.equal(l.consume(1, "ops"), true, "a new bucket starts full");
  assert.equal(l.consume(1000, "bytes"), true, "bandwidth was left as it was");
  assert.equal(l.consume(101, "bytes"), false, "100 ms have passed since it was made: 100 bytes earned");
  l.update({ bandwidth: { size: 0, refill_time: 0 }, ops: { size: 0, refill_time: 0 } });
  assert.equal(l.blockedFor(), 0, "removing every bucket unblocks");
  assert.equal(l.consume(1 << 30, "bytes"), true);
});

test("consumeAfter charges work already done: a debt blocks until it is repaid", () => {
  const c = clock();
  const l = new RateLimiter({ bandwidth: { size: 1000, refill_time: 1000 } }, c.now);
  l.consumeAfter(600, "bytes");
  assert.equal(l.blockedFor(), 0);
  l.consumeAfter(600, "bytes");
  assert.equal(l.blockedFor(), 200, "200 bytes of debt at 1 byte/ms");
  assert.equal(l.consume(1, "bytes"), false);
  c.t += 200;
  assert.equal(l.consume(1, "bytes"), false, "the debt is repaid, nothing earned yet");
  c.t += REFILL_TIMER_MS;
  assert.equal(l.consume(100, "bytes"), true, "earned after the debt");
  assert.equal(l.consume(1, "bytes"), false);
});

test("a small debt blocks for the refill interval, so a stream over the limit wakes the device ten times a second, not once per frame", () => {
  const c = clock();
  const l = new RateLimiter({ bandwidth: { size: 150_000, refill_time: 100 } }, c.now); // 1.5 MB/s
  l.consumeAfter(150_000, "bytes");
  l.consumeAfter(1514, "bytes");
  assert.equal(l.blockedFor(), REFILL_TIMER_MS, "a debt of 1 ms still waits the refill interval");
  c.t += REFILL_TIMER_MS;
  // 100 ms at 1.5 MB/s less the debt: the next wake-up lets a batch of frames through, as Firecracker's does.
  let frames = 0;
  while (l.blockedFor() === 0 && frames < 1000) {
    l.consumeAfter(1514, "bytes");
    frames++;
  }
  assert.ok(frames >= 90 && frames <= 100, `${frames} frames per wake-up`);
});
