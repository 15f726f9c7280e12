import { test } from "node:test";
import assert from "node:assert/strict";
import { Bus } from "../../devices/bus.js";
import { EXIT, type KvmRunView } from "../../kvm/run.js";
import { FakeRun } from "../testing/fake-run.js";
import { ExitMailbox, type VcpuControl } from "../vcpu/control.js";
import { ExitServer, type ServedVcpu } from "./exit-server.js";
import type { LogLevel } from "../logger.js";

function server() {
  const run = new FakeRun();
  const control = { mailbox: ExitMailbox.Pending, completeExit() {} };
  const vcpu: ServedVcpu = { id: 0, control: control as unknown as VcpuControl, run: run as unknown as KvmRunView };
  const lines: [LogLevel, string][] = [];
  const exits = new ExitServer([vcpu], new Bus("pio"), new Bus("mmio"), (level, message) => lines.push([level, message]));
  return { run, exits, lines };
}

test("a guest touching many unclaimed addresses gets a bounded number of log lines", () => {
  const { run, exits, lines } = server();
  for (let i = 0; i < 50_000; i++) {
    run.exitReason = EXIT.MMIO;
    run.mmioAddr = 0xd000_0000 + i * 4;
    exits.serveAll();
    run.exitReason = EXIT.IO;
    run.ioPort = i & 0xffff;
    exits.serveAll();
  }
  // One rate limiter per call site (MMIO, PIO): a burst of 10 each, then one per 500 ms.
  assert.ok(lines.length <= 40, `${lines.length} log lines for 100,000 unclaimed accesses`);
  assert.match(lines[0][1], /no device claims/);
});

test("lines let through after a flood say how many were dropped", async () => {
  const { run, exits, lines } = server();
  for (let i = 0; i < 1000; i++) {
    run.mmioAddr = 0xd000_0000 + i * 4;
    exits.serveAll();
  }
  await new Promise((r) => setTimeout(r, 600));
  run.mmioAddr = 0xe000_0000;
  exits.serveAll();
  assert.match(lines.at(-1)![1], /0xe0000000.*\(\d+ similar messages suppressed by rate limiting\)/);
});
