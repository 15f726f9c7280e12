/**
 * `petasan run` starts its VM's threads before it loads the rest of petasan, and loads only the command it runs
 * (start-up time and memory, bench/footprint.ts and bench/startup.ts): the entry module's only static import is the
 * dependency-free prestart module; every command's own modules are imported when it runs.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { SRC, staticClosure, staticImports } from "../../test/static-imports.js";

test("the CLI entry statically imports nothing but the prestart module", () => {
  assert.deepEqual(staticImports("cli/main.ts"), ["../lib/prestart.js"]);
});

test("the prestart module and what it imports load no more than node:worker_threads", () => {
  assert.deepEqual(staticImports("lib/prestart.ts"), []);
  assert.match(readFileSync(resolve(SRC, "lib/prestart.ts"), "utf8"), /export \{ discardWarmWorkers, prestartWorkers \} from "\.\.\/vmm\/warm-workers\.js"/);
  assert.deepEqual(staticImports("vmm/warm-workers.ts"), ["node:worker_threads", "./job-data.js"]);
  assert.deepEqual(staticImports("vmm/job-data.ts"), ["node:worker_threads"]);
});

test("petasan run's main thread loads no virtio device model (they run on the device thread)", () => {
  const closure = staticClosure("cli/run.ts");
  assert.ok(closure.has("devices/virtio/mmio-transport.ts"), "the closure is followed (the builder places virtio-mmio transports)");
  assert.deepEqual([...closure].filter((f) => /^devices\/virtio\/(block|net|rng|vsock|balloon)\//.test(f)), []);
});
