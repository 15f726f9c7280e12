import { test } from "node:test";
import assert from "node:assert/strict";
import { Worker } from "node:worker_threads";
import { cpusOfNumaNode, parseCpuList } from "./affinity.js";

test("parses kernel CPU lists", () => {
  assert.deepEqual(parseCpuList("0-3,8,10-11\n"), [0, 1, 2, 3, 8, 10, 11]);
  assert.deepEqual(parseCpuList("\n"), []);
  assert.throws(() => parseCpuList("0-x"), /not a CPU list/);
});

test("a NUMA node's CPUs come from sysfs; a missing node is a clear error", () => {
  assert.ok(cpusOfNumaNode(0).length > 0);
  assert.throws(() => cpusOfNumaNode(63), /NUMA node 63 does not exist on this host/);
});

test("pinThisThread restricts the calling thread only (Cpus_allowed_list of its task)", async () => {
  // A worker pins itself, as a vCPU thread does, and reports what /proc says about its own task and the main thread.
  const code = `
    const { parentPort } = require("node:worker_threads");
    const { readFileSync } = require("node:fs");
    import(${JSON.stringify(new URL("./affinity.js", import.meta.url).href)}).then(async (a) => {
      const { gettid } = await import(${JSON.stringify(new URL("./libc.js", import.meta.url).href)});
      a.pinThisThread([0]);
      const allowed = (tid) => /^Cpus_allowed_list:\\s*(.*)$/m.exec(readFileSync("/proc/self/task/" + tid + "/status", "utf8"))[1];
      parentPort.postMessage({ self: allowed(gettid()), main: allowed(process.pid) });
    });`;
  const result = await new Promise<{ self: string; main: string }>((resolve, reject) => {
    const w = new Worker(code, { eval: true });
    w.once("message", (m) => void w.terminate().then(() => resolve(m)));
    w.once("error", reject);
  });
  assert.equal(result.self, "0");
  assert.notEqual(result.main, "0", "the main thread kept its CPUs");
});
