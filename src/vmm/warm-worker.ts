/**
 * The entry of a warm worker (see warm-workers.ts): loads the modules its kind of thread uses (`preload`: PRELOAD
 * there), then waits for its job's workerData, makes it the `workerData` that module sees, and runs the job's
 * entry module.
 */
import { parentPort, workerData } from "node:worker_threads";
import { createRequire, syncBuiltinESMExports } from "node:module";

const { warmEntry: entry, preload } = workerData as { warmEntry: string; preload: string[] };
await Promise.all(preload.map((m) => import(m)));
parentPort!.once("message", (data: unknown) => {
  const threads = createRequire(import.meta.url)("node:worker_threads") as { workerData: unknown };
  threads.workerData = data;
  syncBuiltinESMExports();
  void import(entry);
});
