import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { TimerFd } from "./timerfd.js";

test("a timerfd armed for a period reports it, and disarms", () => {
  const t = TimerFd.create();
  try {
    t.arm(5);
    const info = readFileSync(`/proc/self/fdinfo/${t.fd}`, "utf8");
    assert.match(info, /it_interval: \(5, 0\)/);
    assert.match(info, /clockid: 1/);
    t.read(); // nothing expired yet: non-blocking, no throw
    t.arm(0);
    assert.match(readFileSync(`/proc/self/fdinfo/${t.fd}`, "utf8"), /it_value: \(0, 0\)/);
  } finally {
    t.close();
  }
});
