/**
 * Preloaded with `node --import` by bundle.test.ts: prints the entry file of every worker the process starts to
 * stderr ("worker: <url>"), to see which build of the threads a command runs.
 */
import workerThreads from "node:worker_threads";
import { syncBuiltinESMExports } from "node:module";

const Original = workerThreads.Worker;
workerThreads.Worker = class extends Original {
  constructor(file: string | URL, options?: workerThreads.WorkerOptions) {
    process.stderr.write(`worker: ${file instanceof URL ? file.href : file}\n`);
    super(file, options);
  }
};
// The named exports (`import { Worker } from "node:worker_threads"`) follow the default export's change.
syncBuiltinESMExports();
