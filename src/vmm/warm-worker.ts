/**
 * The entry of a warm worker (see warm-workers.ts): loads the modules its kind of thread uses, then waits for its
 * job's workerData, makes it the `workerData` that module sees, and runs the job's entry module.
 * Each kind loads only its own modules (the entry's imports): a vCPU thread that also held the device models'
 * compiled code would cost ~1.7 MiB more than a cold one (bench/footprint.ts).
 */
import { parentPort, workerData } from "node:worker_threads";
import { createRequire, syncBuiltinESMExports } from "node:module";
import type { WorkerKind } from "./warm-workers.js";

/** The modules each kind of thread imports (koffi and libc above all), so that starting the job runs only its own file. */
const PRELOAD: Record<WorkerKind, string[]> = {
  vcpu: [
    "../sys/libc.js", "../sys/affinity.js", "../kvm/vcpu.js", "../kvm/run.js", "../kvm/ioctls.js", "../devices/bus.js",
    "../devices/legacy/sink.js", "./vcpu/control.js", "./vcpu/register-dump.js", "./exit-doorbell.js", "./io-dispatch.js",
  ],
  devices: [
    "../sys/libc.js", "../kvm/vm.js", "../kvm/run.js", "../devices/bus.js", "../devices/virtio/index.js", "../devices/legacy/serial.js",
    "../devices/legacy/i8042.js", "../devices/legacy/rtc.js", "../devices/mmds/index.js", "../memory/host-mapping.js",
    "./vcpu/control.js", "./exit-doorbell.js", "./logger.js", "./device-thread/event-loop.js", "./device-thread/exit-server.js",
    "./device-thread/legacy-devices.js", "./device-thread/virtio-devices.js", "./device-thread/user-devices.js",
    "./device-thread/snapshot.js",
  ],
};

const { warmEntry: entry, kind } = workerData as { warmEntry: string; kind: WorkerKind };
await Promise.all(PRELOAD[kind].map((m) => import(m)));
parentPort!.once("message", (data: unknown) => {
  const threads = createRequire(import.meta.url)("node:worker_threads") as { workerData: unknown };
  threads.workerData = data;
  syncBuiltinESMExports();
  void import(entry);
});
