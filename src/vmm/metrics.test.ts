import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { MetricsError, MetricsRecorder, type MetricsSource } from "./metrics.js";

function tempPath(name: string): { file: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), "petasan-metrics-"));
  return { file: path.join(dir, name), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function lines(file: string): Record<string, any>[] {
  return readFileSync(file, "utf8").trimEnd().split("\n").map((l) => JSON.parse(l));
}

/** A VM whose counters the test sets. */
class FakeSource implements MetricsSource {
  vcpus: Record<string, number>[] = [];
  devices: Record<string, unknown> = {};
  vcpuMetrics() {
    return this.vcpus;
  }
  deviceMetrics() {
    return Promise.resolve(this.devices);
  }
}

test("without an output, flush writes nothing and keeps the counters", async () => {
  const { file, cleanup } = tempPath("m.json");
  try {
    const metrics = new MetricsRecorder("vm1", () => 1000);
    metrics.count("put_api_requests", "boot_source_count");
    await metrics.flush();
    metrics.open({ metrics_path: file, emit_id: false });
    await metrics.flush();
    assert.equal(lines(file)[0].put_api_requests.boot_source_count, 1);
    metrics.close();
  } finally {
    cleanup();
  }
});

test("a line has the timestamp first, id and properties when asked, and counters as increments", async () => {
  const { file, cleanup } = tempPath("m.json");
  try {
    let now = 1541591155180;
    const metrics = new MetricsRecorder("vm1", () => now);
    metrics.open({ metrics_path: file, emit_id: true, properties: { team: "a" } });
    const source = new FakeSource();
    source.vcpus = [{ io_in: 2, io_out: 5, kicks: 1 }, { io_in: 1, io_out: 0, kicks: 0 }];
    source.devices = { serial: { txBytes: 10, rxBytes: 3 }, note: "ignored" };
    metrics.count("put_api_requests", "actions_count");
    metrics.count("put_api_requests", "actions_count");
    metrics.record("latencies_us", "pause_vm", 850);
    await metrics.flush(source);

    now += 60_000;
    source.vcpus = [{ io_in: 4, io_out: 5, kicks: 1 }, { io_in: 1, io_out: 2, kicks: 0 }];
    source.devices = { serial: { txBytes: 15, rxBytes: 3 } };
    metrics.count("vcpu", "failures");
    await metrics.flush(source);
    metrics.close();

    const [first, second] = lines(file);
    assert.deepEqual(Object.keys(first).slice(0, 3), ["utc_timestamp_ms", "id", "properties"]);
    assert.equal(first.utc_timestamp_ms, 1541591155180);
    assert.equal(first.id, "vm1");
    assert.deepEqual(first.properties, { team: "a" });
    assert.deepEqual(first.vcpu, { failures: 0, exit_io_in: 3, exit_io_out: 5, kicks: 1 });
    assert.deepEqual(first.put_api_requests, { actions_count: 2 });
    assert.deepEqual(first.latencies_us, { pause_vm: 850 });
    assert.deepEqual(first.serial, { txBytes: 10, rxBytes: 3 });
    assert.equal(first.note, undefined);

    assert.equal(second.utc_timestamp_ms, 1541591215180);
    assert.deepEqual(second.vcpu, { failures: 1, exit_io_in: 2, exit_io_out: 2, kicks: 0 });
    assert.equal(second.put_api_requests, undefined);
    assert.deepEqual(second.latencies_us, { pause_vm: 850 });
    assert.deepEqual(second.serial, { txBytes: 5, rxBytes: 0 });
  } finally {
    cleanup();
  }
});

test("the device thread's logger counters join the main thread's instead of replacing them", async () => {
  const { file, cleanup } = tempPath("m.json");
  try {
    const metrics = new MetricsRecorder("vm1", () => 0);
    metrics.open({ metrics_path: file, emit_id: false });
    const source = new FakeSource();
    source.devices = { logger: { rate_limited_log_count: 7 } };
    metrics.count("logger", "metrics_fails");
    await metrics.flush(source);
    metrics.close();
    assert.deepEqual(lines(file)[0].logger, { metrics_fails: 1, rate_limited_log_count: 7 });
  } finally {
    cleanup();
  }
});

test("an unopenable metrics path is a MetricsError naming it", () => {
  const metrics = new MetricsRecorder("vm1");
  assert.throws(() => metrics.open({ metrics_path: "/nonexistent-dir/m.json", emit_id: false }), (e: unknown) => {
    assert.ok(e instanceof MetricsError);
    assert.match(e.message, /metrics \/nonexistent-dir\/m\.json: cannot open/);
    return true;
  });
});
