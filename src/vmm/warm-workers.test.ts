import { test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { startWorker } from "./warm-workers.js";
import { WARM_WORKER_DATA } from "./job-data.js";

test("vCPU threads run with V8's young generation capped at 3 MiB; the device thread without a cap", async () => {
  for (const [kind, expected] of [["vcpu", 3], ["devices", undefined]] as const) {
    // Started as a warm worker would be: it loads its modules, then waits for a job that never comes.
    const w = startWorker(kind, WARM_WORKER_DATA, { name: `test-${kind}` });
    try {
      await once(w, "online");
      const young = w.resourceLimits?.maxYoungGenerationSizeMb;
      if (expected === undefined) assert.ok(young !== undefined && young > 3, `${kind}: ${young}`);
      else assert.equal(young, expected, kind);
    } finally {
      await w.terminate();
    }
  }
});
