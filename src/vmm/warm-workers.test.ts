import { test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { discardWarmWorkers, prestartWorkers, startWorker } from "./warm-workers.js";
import { warmWorkerData } from "./job-data.js";

test("vCPU threads run with V8's young generation capped at 3 MiB; the device thread without a cap", async () => {
  for (const [kind, expected] of [["vcpu", 3], ["devices", undefined]] as const) {
    // Started as a warm worker would be: it loads its modules, then waits for a job that never comes.
    const data = warmWorkerData();
    const w = startWorker(kind, data, { name: `test-${kind}` });
    try {
      await once(w, "online");
      // Ended only once it has loaded its modules (koffi's init aborts the process in a terminating worker).
      while (Atomics.load(new Int32Array(data.idle), 0) === 0) await new Promise((r) => setTimeout(r, 5));
      const young = w.resourceLimits?.maxYoungGenerationSizeMb;
      if (expected === undefined) assert.ok(young !== undefined && young > 3, `${kind}: ${young}`);
      else assert.equal(young, expected, kind);
    } finally {
      await w.terminate();
    }
  }
});

test("warm workers nobody took are ended once they have booted: ending them while koffi loads aborted the process", async () => {
  for (let i = 0; i < 5; i++) {
    prestartWorkers({ devices: 1, vcpu: 1 });
    // At once, while they boot: this process would die with SIGABRT if they were terminated now.
    await discardWarmWorkers();
  }
});
