/**
 * Worker threads started ahead of need. Starting a Node worker (an isolate, Node's bootstrap, then petasan's
 * modules and koffi) costs tens to hundreds of milliseconds, far more than rebuilding a VM from a snapshot, so a
 * process that will soon start a VM (API mode, waiting for InstanceStart or /snapshot/load) can start its device
 * thread and a vCPU thread first. A warm worker has loaded the modules both kinds use and waits for the
 * workerData of the job it is given; startWorker() hands one out, or starts a cold one when none is left.
 */
import { Worker, type TransferListItem } from "node:worker_threads";

export type WorkerKind = "vcpu" | "devices";

const ENTRY: Record<WorkerKind, URL> = {
  vcpu: new URL("./vcpu/worker.js", import.meta.url),
  devices: new URL("./device-thread/worker.js", import.meta.url),
};
const pool: Record<WorkerKind, Worker[]> = { vcpu: [], devices: [] };

/**
 * The modules each kind of thread imports (koffi and libc above all), which a warm worker loads ahead so that
 * starting its job runs only the entry's own file. Each kind loads only its own: a vCPU thread that also held the
 * device models' compiled code would cost ~1.7 MiB more than a cold one (bench/footprint.ts).
 */
export const PRELOAD: Record<WorkerKind, string[]> = {
  vcpu: [
    "../sys/libc.js", "../sys/errors.js", "../sys/affinity.js", "../kvm/vcpu.js", "../kvm/run.js", "../kvm/ioctls.js", "../devices/bus.js",
    "../devices/legacy/sink.js", "./vcpu/control.js", "./vcpu/register-dump.js", "./exit-doorbell.js", "./io-dispatch.js",
  ],
  devices: [
    "../sys/libc.js", "../sys/eventfd.js", "../kvm/vm.js", "../kvm/run.js", "../devices/bus.js", "../devices/log-rate-limit.js", "../devices/virtio/index.js", "../devices/legacy/serial.js",
    "../devices/legacy/i8042.js", "../devices/legacy/rtc.js", "../devices/mmds/index.js", "../memory/host-mapping.js",
    "./vcpu/control.js", "./exit-doorbell.js", "./logger.js", "./device-thread/event-loop.js", "./device-thread/exit-server.js",
    "./device-thread/legacy-devices.js", "./device-thread/irq-line.js", "./device-thread/virtio-devices.js", "./device-thread/user-devices.js",
    "./device-thread/snapshot.js",
  ],
};

/** Starts `counts` warm workers of each kind (in addition to any still waiting). */
export function prestartWorkers(counts: Partial<Record<WorkerKind, number>>): void {
  for (const kind of ["devices", "vcpu"] as const) {
    for (let i = 0; i < (counts[kind] ?? 0); i++) {
      const w = new Worker(new URL("./warm-worker.js", import.meta.url), { workerData: { warmEntry: ENTRY[kind].href, preload: PRELOAD[kind].map((m) => new URL(m, import.meta.url).href) }, name: `warm-${kind}` });
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

/** A worker of `kind` running with `data`: a warm one if there is one, else a new one. */
export function startWorker(kind: WorkerKind, data: unknown, options: { name: string; transferList?: TransferListItem[] }): Worker {
  const warm = pool[kind].shift();
  if (!warm) return new Worker(ENTRY[kind], { workerData: data, transferList: options.transferList, name: options.name });
  warm.ref();
  warm.postMessage(data, options.transferList);
  return warm;
}
