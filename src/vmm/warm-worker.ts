/**
 * The entry of a warm worker (see warm-workers.ts): loads the modules the vCPU and device threads use, then waits
 * for its job's workerData, makes it the `workerData` that module sees, and runs the job's entry module.
 */
import { parentPort, workerData } from "node:worker_threads";
import { createRequire, syncBuiltinESMExports } from "node:module";
// Every module the two entries import (koffi and libc above all), so that starting the job runs only its own file
// (warm-workers.test.ts checks the list against the entries' imports).
import "../sys/libc.js";
import "../kvm/vcpu.js";
import "../kvm/run.js";
import "../kvm/vm.js";
import "../devices/bus.js";
import "../devices/virtio/index.js";
import "../devices/legacy/serial.js";
import "../devices/legacy/i8042.js";
import "../devices/legacy/rtc.js";
import "./vcpu/control.js";
import "./exit-doorbell.js";
import "./io-dispatch.js";
import "./logger.js";
import "./device-thread/event-loop.js";
import "./device-thread/exit-server.js";
import "./device-thread/legacy-devices.js";
import "./device-thread/virtio-devices.js";
import "./device-thread/snapshot.js";
import "./device-thread/user-devices.js";
import "./device-thread/irq-line.js";
import "./vcpu/register-dump.js";
import "../sys/errors.js";
import "../sys/eventfd.js";
import "../sys/affinity.js";
import "../kvm/ioctls.js";
import "../devices/legacy/sink.js";
import "../devices/mmds/index.js";
import "../devices/log-rate-limit.js";
import "../memory/host-mapping.js";

const entry = (workerData as { warmEntry: string }).warmEntry;
parentPort!.once("message", (data: unknown) => {
  const threads = createRequire(import.meta.url)("node:worker_threads") as { workerData: unknown };
  threads.workerData = data;
  syncBuiltinESMExports();
  void import(entry);
});
