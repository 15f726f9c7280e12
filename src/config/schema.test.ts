import assert from "node:assert/strict";
import { test } from "node:test";
import { driveSchema } from "./drive.js";
import { machineConfigSchema } from "./machine-config.js";
import { metricsSchema } from "./metrics.js";
import { ConfigError } from "./schema.js";

const drive = { drive_id: "rootfs", path_on_host: "/img", is_root_device: true };

function problem(parse: () => unknown): string {
  try {
    parse();
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.message;
  }
  assert.fail("expected a ConfigError");
}

test("fills defaults and leaves absent optional fields out", () => {
  assert.deepEqual(driveSchema.parse(drive), {
    ...drive,
    is_read_only: false,
    cache_type: "Unsafe",
    io_engine: "Sync",
  });
});

test("null reads as absent for optional fields (as serde's Option)", () => {
  assert.equal(driveSchema.parse({ ...drive, partuuid: null }).partuuid, undefined);
});

test("errors name the field and the rule", () => {
  assert.equal(problem(() => machineConfigSchema.parse({ vcpu_count: 256, mem_size_mib: 1 })), "vcpu_count: must be an integer between 0 and 255");
  assert.equal(problem(() => machineConfigSchema.parse({ vcpu_count: 1.5, mem_size_mib: 1 })), "vcpu_count: must be an integer between 0 and 255");
  assert.equal(problem(() => machineConfigSchema.parse({ vcpu_count: "2", mem_size_mib: 1 })), "vcpu_count: must be an integer between 0 and 255");
  assert.equal(problem(() => machineConfigSchema.parse({ mem_size_mib: 1 })), "vcpu_count: missing required field");
  assert.equal(problem(() => machineConfigSchema.parse({ vcpu_count: 1, mem_size_mib: 1, smt: "yes" })), "smt: must be true or false");
  assert.equal(problem(() => driveSchema.parse({ ...drive, cache_type: "None" })), 'cache_type: must be one of "Unsafe", "Writeback"');
  assert.equal(problem(() => driveSchema.parse({ ...drive, drive_id: "a-b" })), "drive_id: must be non-empty and contain only alphanumeric characters and underscores");
});

test("unknown fields are rejected, including prototype keys", () => {
  assert.match(problem(() => driveSchema.parse({ ...drive, size: 1 })), /^size: unknown field; expected one of: drive_id, /);
  assert.match(problem(() => driveSchema.parse(JSON.parse('{"__proto__": {"x": 1}}'))), /^__proto__: unknown field/);
});

test("known Firecracker fields petasan refuses say why", () => {
  assert.match(problem(() => driveSchema.parse({ ...drive, socket: "/s" })), /^socket: petasan does not support vhost-user block devices \(give path_on_host for a virtio-block drive\) yet$/);
});

test("nested paths name the whole way down", () => {
  const bad = { ...drive, rate_limiter: { bandwidth: { size: -1, refill_time: 100 } } };
  assert.equal(problem(() => driveSchema.parse(bad)), `rate_limiter.bandwidth.size: must be an integer between 0 and ${Number.MAX_SAFE_INTEGER}`);
  assert.equal(problem(() => metricsSchema.parse({ metrics_path: "/m", properties: { a: 1 } })), "properties.a: must be a string");
});

test("a value that is not an object is refused", () => {
  assert.equal(problem(() => driveSchema.parse([])), "must be a JSON object");
  assert.equal(problem(() => driveSchema.parse({ ...drive, rate_limiter: 5 })), "rate_limiter: must be a JSON object");
});
