import { test } from "node:test";
import assert from "node:assert/strict";
import { HISTORY, StatsHistory } from "./stats.js";
import type { VmMetrics } from "../lib/index.js";

function metrics(ioOut: number, readBytes: number, rxBytes: number, cpuUs: number): VmMetrics {
  const vcpu = { io_in: 1, io_out: ioOut, mmio_read: 0, mmio_write: 0, intr: 0, hlt: 0, other: 0, handed_over: 0, kicks: 5 };
  return {
    vcpus: [vcpu, { ...vcpu }],
    vcpuCpuTimeUs: [cpuUs, cpuUs],
    devices: {
      block_rootfs: { readOps: readBytes / 512, readBytes, writeOps: 0, writeBytes: 0 },
      net_eth0: { rxBytes, txBytes: 0, rxFrames: rxBytes / 100, txFrames: 0 },
      uart: {},
      i8042: {},
    },
  } as unknown as VmMetrics;
}

test("counters since boot become per-second rates, summed over vCPUs and devices", () => {
  const history = new StatsHistory();
  assert.equal(history.add(metrics(10, 0, 0, 0), 1000), undefined);
  const sample = history.add(metrics(30, 1024, 200, 250_000), 3000)!;
  assert.equal(sample.exits.io_out, 20); // (30-10) x 2 vCPUs over 2 s
  assert.equal(sample.exits.io_in, 0);
  assert.equal(sample.exitsTotal, 62);
  assert.deepEqual(sample.disk, { readBytes: 512, writeBytes: 0, readOps: 1, writeOps: 0 });
  assert.deepEqual(sample.net, { rxBytes: 100, txBytes: 0, rxFrames: 1, txFrames: 0 });
  assert.equal(sample.vcpuTime, 0.25); // 0.5 CPU-s over 2 s
  assert.equal(history.samples.length, 1);
});

test("the history is bounded", () => {
  const history = new StatsHistory();
  for (let i = 0; i <= HISTORY + 10; i++) history.add(metrics(i, 0, 0, 0), i * 1000);
  assert.equal(history.samples.length, HISTORY);
});
