/**
 * The data a vCPU or device thread's entry module runs with. A worker started for its job has it as `workerData`.
 * A warm worker (warm-workers.ts) runs its entry module ahead of need, with `workerData` `{ warm: true }`: the
 * module imports everything and runs up to `await jobData()`, which then waits for the job's data as the first
 * message, so that taking the job costs one message, not loading and compiling the thread's modules.
 */
import { parentPort, workerData } from "node:worker_threads";

/** The `workerData` of a worker started ahead of its job. */
export const WARM_WORKER_DATA = { warm: true } as const;

export function jobData<T>(): Promise<T> {
  if ((workerData as Partial<typeof WARM_WORKER_DATA> | undefined)?.warm !== true) return Promise.resolve(workerData as T);
  return new Promise((resolve) => parentPort!.once("message", (data: T) => resolve(data)));
}
