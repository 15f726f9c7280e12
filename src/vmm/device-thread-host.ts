/**
 * The device threads of a process, on the controlling thread. A Node worker costs ~8 MiB of private memory before it
 * loads anything (bench/README.md, footprint), so the VMs of one process share one device thread: it serves each VM's
 * devices on one epoll loop (device-thread/worker.ts; a failure in one VM's devices ends that VM only,
 * device-thread/hosted-vm.ts). VMs share a thread only when its seccomp filter is theirs: the filter is installed once,
 * by the thread, before the first guest runs, so a VM started with another filter (a --seccomp-filter file's, or none)
 * gets a device thread of its own. A thread ends when its last VM has left it; the next VM starts a new one.
 */
import { MessageChannel, type MessagePort, type Worker } from "node:worker_threads";
import { close } from "../sys/libc.js";
import { newEventFd, signalEventFd } from "../sys/eventfd.js";
import { startWorker } from "./warm-workers.js";
import type { DeviceHostData, DeviceHostEvent, DeviceHostRequest, DeviceThreadData } from "./device-thread/protocol.js";

/** How long a device thread may take to end once told to, before it is terminated. */
const EXIT_TIMEOUT_MS = 2000;

/** A VM on a device thread: told if the thread itself fails or ends under it. */
export interface HostedVmHandle {
  onThreadLost(message: string): void;
}

const hosts = new Map<string, DeviceThreadHost>();

/** The key a device thread is shared by: its seccomp filter's bytes, or none. */
function filterKey(seccomp: Uint8Array | undefined): string {
  return seccomp === undefined ? "none" : Buffer.from(seccomp.buffer, seccomp.byteOffset, seccomp.byteLength).toString("base64");
}

/** Puts a VM's devices on the process's device thread for its seccomp filter, starting that thread if need be. */
export function hostVm(data: DeviceThreadData, vm: HostedVmHandle): DeviceThreadHost {
  const key = filterKey(data.seccomp);
  let host = hosts.get(key);
  if (host === undefined) {
    const created: DeviceThreadHost = new DeviceThreadHost(data.seccomp, () => {
      if (hosts.get(key) === created) hosts.delete(key);
    });
    host = created;
    hosts.set(key, host);
  }
  host.add(data, vm);
  return host;
}

export class DeviceThreadHost {
  private readonly worker: Worker;
  private readonly controlEventFd = newEventFd();
  private readonly port: MessagePort;
  private readonly vms = new Set<HostedVmHandle>();
  private readonly exited: Promise<void>;
  private ended = false;

  constructor(seccomp: Uint8Array | undefined, private readonly forget: () => void) {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    const data: DeviceHostData = { controlEventFd: this.controlEventFd, port: port2, ...(seccomp && { seccomp }) };
    this.worker = startWorker("devices", data, { transferList: [port2], name: "devices" });
    this.exited = new Promise((resolve) => this.worker.once("exit", () => resolve()));
    void this.exited.then(() => {
      // Closed only once the thread is gone: until then it may be waiting on it for the request to exit.
      close(this.controlEventFd);
      this.lost("the device thread ended");
    });
    this.worker.on("error", (err) => this.lost(`device thread crashed: ${err.stack ?? err}`));
    this.worker.on("message", (e: DeviceHostEvent) => {
      if (e.kind === "host-failed") this.lost(`device thread failed: ${e.error}`);
    });
  }

  private post(req: DeviceHostRequest, transfer: MessagePort[] = []): void {
    this.port.postMessage(req, transfer);
    signalEventFd(this.controlEventFd);
  }

  /** Whether VMs other than `vm` are on this thread. */
  sharedBeyond(vm: HostedVmHandle): boolean {
    return this.vms.size > (this.vms.has(vm) ? 1 : 0);
  }

  add(data: DeviceThreadData, vm: HostedVmHandle): void {
    this.vms.add(vm);
    this.post({ kind: "add-vm", data }, [data.port]);
  }

  /**
   * The VM has left the thread (its devices said "stopped" or "failed", or it gave up waiting). The last VM to leave
   * ends the thread; resolves once it has ended (a thread that does not end in time is terminated).
   */
  async remove(vm: HostedVmHandle): Promise<void> {
    if (!this.vms.delete(vm) || this.vms.size > 0) return;
    // No VM is left: no new VM may come to this thread, the next one starts its own.
    this.forget();
    if (!this.ended) this.post({ kind: "exit" });
    await this.end();
  }

  /** Ends the thread whatever runs on it (a VM whose devices do not answer): every VM on it is told. */
  async terminate(reason: string): Promise<void> {
    if (!this.ended) this.post({ kind: "exit" });
    this.lost(reason);
    await this.end();
  }

  private async end(): Promise<void> {
    await Promise.race([this.exited, new Promise((r) => setTimeout(r, EXIT_TIMEOUT_MS).unref())]);
    // A thread still busy in a device's code is stopped the next time it runs JavaScript.
    await this.worker.terminate();
    await this.exited;
  }

  /** The thread is gone (or going): the VMs still on it have lost their devices. */
  private lost(message: string): void {
    if (!this.ended) {
      this.ended = true;
      this.forget();
      this.port.close();
    }
    const vms = [...this.vms];
    this.vms.clear();
    for (const vm of vms) vm.onThreadLost(message);
  }
}
