/**
 * A thread's entry module gets its job's data from jobData(): as workerData when the worker was started for the job,
 * or, for a warm worker, as the first message, after the module has loaded and run up to that point (so the modules
 * are loaded before the job arrives), and also when the job was posted before the module got there.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { once } from "node:events";
import { Worker } from "node:worker_threads";
import { warmWorkerData } from "./job-data.js";

const dir = mkdtempSync(path.join(tmpdir(), "petasan-job-data-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const entry = path.join(dir, "entry.mjs");
writeFileSync(entry, `import { parentPort } from "node:worker_threads";
import { jobData } from ${JSON.stringify(new URL("./job-data.js", import.meta.url).href)};
parentPort.postMessage({ loaded: true });
const data = await jobData();
parentPort.postMessage({ got: data });
`);

/** The worker's messages until it has reported its data. */
async function messages(w: Worker): Promise<unknown[]> {
  const seen: unknown[] = [];
  w.on("message", (m) => seen.push(m));
  while (!seen.some((m) => (m as { got?: unknown }).got !== undefined)) await once(w, "message");
  await w.terminate();
  return seen;
}

test("a worker started for its job gets workerData", async () => {
  assert.deepEqual(await messages(new Worker(entry, { workerData: { job: 1 } })), [{ loaded: true }, { got: { job: 1 } }]);
});

test("a warm worker runs its entry up to jobData() first, then gets the job as the first message", async () => {
  const w = new Worker(entry, { workerData: warmWorkerData() });
  const seen = messages(w);
  await once(w, "message");
  w.postMessage({ job: 2 });
  assert.deepEqual(await seen, [{ loaded: true }, { got: { job: 2 } }]);
});

test("a job posted to a warm worker before its entry reached jobData() is not lost", async () => {
  const w = new Worker(entry, { workerData: warmWorkerData() });
  w.postMessage({ job: 3 });
  assert.deepEqual(await messages(w), [{ loaded: true }, { got: { job: 3 } }]);
});
