/**
 * The data a vCPU or device thread's entry module runs with. A worker started for its job has it as `workerData`.
 * A warm worker (warm-workers.ts) runs its entry module ahead of need, with `workerData` `{ warm: true }`: the
 * module imports everything and runs up to `await jobData()`, which then waits for the job's data as the first
 * message, so that taking the job costs one message, not loading and compiling the thread's modules.
 */
import { parentPort, workerData } from "node:worker_threads";

/**
 * The `workerData` of a worker started ahead of its job: `idle` is a word the worker sets to 1 once it has loaded
 * its modules and waits (its owner may end it only then: see warm-workers.ts discardWarmWorkers).
 */
export interface WarmWorkerData {
  warm: true;
  idle: SharedArrayBuffer;
}

export function warmWorkerData(): WarmWorkerData {
  return { warm: true, idle: new SharedArrayBuffer(4) };
}

/**
 * `warmUp`: run once while a warm worker waits (never in a worker that has its job already): code the job will run,
 * exercised on throwaway objects, so V8 has compiled it before the job arrives. Its errors are ignored.
 */
export function jobData<T>(warmUp?: () => void): Promise<T> {
  const warm = workerData as Partial<WarmWorkerData> | undefined;
  if (warm?.warm !== true) return Promise.resolve(workerData as T);
  const job = new Promise<T>((resolve) => parentPort!.once("message", (data: T) => resolve(data)));
  if (warmUp) {
    try {
      warmUp();
    } catch {
      // Only a warm-up: the job reports its own errors.
    }
  }
  if (warm.idle) Atomics.store(new Int32Array(warm.idle), 0, 1);
  return job;
}
