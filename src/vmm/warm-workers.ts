/**
 * Worker threads started ahead of need. Starting a Node worker (an isolate, Node's bootstrap, then petasan's
 * modules and koffi) costs tens to hundreds of milliseconds, far more than rebuilding a VM from a snapshot, so a
 * process that will soon start a VM (API mode, waiting for InstanceStart or /snapshot/load) can start its device
 * thread and a vCPU thread first. A warm worker runs its entry module, which loads everything it imports and then
 * waits for the data of the job it is given (job-data.ts); startWorker() hands one out, or starts a cold one when
 * none is left.
 */
import { Worker, type ResourceLimits, type TransferListItem } from "node:worker_threads";
import { warmWorkerData } from "./job-data.js";

export type WorkerKind = "vcpu" | "devices";

const ENTRY: Record<WorkerKind, URL> = {
  vcpu: new URL("./vcpu/worker.js", import.meta.url),
  devices: new URL("./device-thread/worker.js", import.meta.url),
};
const pool: Record<WorkerKind, Worker[]> = { vcpu: [], devices: [] };

/**
 * V8's young generation (its nursery: two semi-spaces and a large-object space) per thread kind, in MiB. Left alone,
 * it grows to several MiB while the thread loads its modules, and an idle thread never shrinks it again; capped at 3
 * (1 MiB semi-spaces, V8's starting size), it stays at its smallest: ~1 MiB less per vCPU thread. A vCPU thread
 * allocates nothing on its exit path (vcpu/registers.ts), so the cap costs it no scavenges that matter
 * (bench/exit-rate.js). The device thread is left alone: it runs every VM's data path, which allocates, and
 * bench/blk.js run on a worker capped the same way was up to a quarter slower (more scavenges); being one per process
 * (device-thread-host.ts), it would save ~1-2 MiB once. Figures: bench/README.md, footprint.
 */
const YOUNG_GENERATION_MB: Record<WorkerKind, number | undefined> = { vcpu: 3, devices: undefined };

function workerOptions(kind: WorkerKind): { resourceLimits?: ResourceLimits } {
  const mb = YOUNG_GENERATION_MB[kind];
  return mb === undefined ? {} : { resourceLimits: { maxYoungGenerationSizeMb: mb } };
}

/** Starts `counts` warm workers of each kind (in addition to any still waiting). */
export function prestartWorkers(counts: Partial<Record<WorkerKind, number>>): void {
  for (const kind of ["devices", "vcpu"] as const) {
    for (let i = 0; i < (counts[kind] ?? 0); i++) {
      const data = warmWorkerData();
      const w = new Worker(ENTRY[kind], { workerData: data, name: `warm-${kind}`, ...workerOptions(kind) });
      idleFlags.set(w, new Int32Array(data.idle));
      // A warm worker that fails before it is used is simply not used.
      w.on("error", () => {
        const at = pool[kind].indexOf(w);
        if (at >= 0) pool[kind].splice(at, 1);
      });
      // Waiting workers must not keep a process alive that has nothing else to do.
      w.unref();
      pool[kind].push(w);
    }
  }
}

/** Each warm worker's `idle` word (job-data.ts): 1 once it has loaded its modules and waits for a job. */
const idleFlags = new WeakMap<Worker, Int32Array>();
/** How long discardWarmWorkers waits for a worker still booting. */
const BOOT_WAIT_MS = 5000;

/**
 * Ends the warm workers no job took, once each has finished booting. A worker ended while it loads koffi aborts the
 * whole process (koffi's module init throws into a terminating isolate: "FATAL ERROR: Error::ThrowAsJavaScriptException
 * napi_throw", exit code 134), and so does a process.exit() then: a `petasan restore` refused before its VM was built
 * ended that way in 1 of 40 runs, and in 5 of 40 when it terminated its workers at once. So this waits for them.
 */
export async function discardWarmWorkers(): Promise<void> {
  const idle = [...pool.vcpu, ...pool.devices];
  pool.vcpu.length = 0;
  pool.devices.length = 0;
  const deadline = Date.now() + BOOT_WAIT_MS;
  for (const w of idle) {
    const flag = idleFlags.get(w);
    while (flag && Atomics.load(flag, 0) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
  }
  await Promise.all(idle.map((w) => w.terminate()));
}

/** A worker of `kind` running with `data`: a warm one if there is one, else a new one. */
export function startWorker(kind: WorkerKind, data: unknown, options: { name: string; transferList?: TransferListItem[] }): Worker {
  const warm = pool[kind].shift();
  if (!warm) return new Worker(ENTRY[kind], { workerData: data, transferList: options.transferList, name: options.name, ...workerOptions(kind) });
  warm.ref();
  warm.postMessage(data, options.transferList);
  return warm;
}
