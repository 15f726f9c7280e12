import { test } from "node:test";
import assert from "node:assert/strict";
import { LogRateLimiter } from "./log-rate-limit.js";

test("a burst of 10, then one line per 500 ms, and the next line counts the dropped ones", () => {
  let now = 1000;
  const limiter = new LogRateLimiter({ now: () => now });
  const lines: string[] = [];
  const log = (_level: string, m: string) => lines.push(m);
  for (let i = 0; i < 100; i++) limiter.log(log, "warn", `line ${i}`);
  assert.deepEqual(lines, Array.from({ length: 10 }, (_, i) => `line ${i}`));
  now += 499;
  limiter.log(log, "warn", "too early");
  assert.equal(lines.length, 10);
  now += 1;
  limiter.log(log, "warn", "next");
  assert.equal(lines.at(-1), "next (91 similar messages suppressed by rate limiting)");
  now += 60_000;
  for (let i = 0; i < 12; i++) limiter.log(log, "warn", "again");
  assert.equal(lines.length, 21, "a full burst again after a quiet minute, no more");
});

test("a dropped line is not formatted", () => {
  const limiter = new LogRateLimiter({ burst: 1, refillMs: 1000, now: () => 0 });
  let formatted = 0;
  for (let i = 0; i < 5; i++) limiter.log(() => {}, "warn", () => `x${formatted++}`);
  assert.equal(formatted, 1);
});
