/**
 * The device thread: owns every device model and both buses of the VMs it serves. A process has one per seccomp
 * choice, shared by its VMs (device-thread-host.ts says why and which), each VM a HostedVm with its own devices,
 * buses, requests port and exit server (hosted-vm.ts, which also says how a failure stays inside one VM). It runs the
 * data path (virtio queues, disks, taps, vsock sockets, timers, host input) and the requests of the controllers;
 * device registers are served on the vCPU threads, over register files this thread shares with them
 * (vcpu/registers.ts), except the few accesses a vCPU hands over (DRIVER_OK, reset, config writes, the user's devices,
 * unclaimed addresses). It sleeps in one epoll_wait on every VM's fds (exit eventfd, control eventfd, queue eventfds,
 * the devices' host fds and timers) and on its own control eventfd, where VMs are added. The API/CLI thread never runs
 * device code.
 */
import { parentPort, receiveMessageOnPort } from "node:worker_threads";
import { jobData } from "../job-data.js";
import { EventLoop } from "./event-loop.js";
import { drainEventFd } from "../../sys/eventfd.js";
import { loadUserDevices, loadUserVirtioDevices } from "./user-devices.js";
import type { DeviceHostData, DeviceHostEvent, DeviceHostRequest, DeviceThreadData } from "./protocol.js";
import { lockDownThread } from "../seccomp/thread-lockdown.js";
import { HostedVm, oneLine } from "./hosted-vm.js";
import { warmUpDeviceThread } from "./warm-up.js";

const host = await jobData<DeviceHostData>(warmUpDeviceThread);
const loop = new EventLoop();
const vms = new Set<HostedVm>();
/** VMs to add: their modules load between two runs of the loop (an import needs Node's own event loop). */
const toAdd: DeviceThreadData[] = [];
let exiting = false;
let lockedDown = false;

loop.add(host.controlEventFd, () => {
  drainEventFd(host.controlEventFd);
  for (let m = receiveMessageOnPort(host.port); m; m = receiveMessageOnPort(host.port)) {
    const req = m.message as DeviceHostRequest;
    if (req.kind === "add-vm") toAdd.push(req.data);
    else exiting = true;
    loop.stop();
  }
});

/** Opens one VM's devices; "ready" or "failed" goes to its controller. */
async function addVm(data: DeviceThreadData): Promise<void> {
  let vm: HostedVm | undefined;
  try {
    const loaded = { userDevices: await loadUserDevices(data.userDevices), userVirtio: await loadUserVirtioDevices(data.virtio) };
    const added = new HostedVm(data, loop, loaded, () => vms.delete(added));
    vm = added;
    vms.add(vm);
    // The first VM's devices are open: the thread narrows itself before any guest runs (each VM's vCPUs wait for
    // its "ready"). Later VMs open their devices under this filter: the policy allows what opening them takes
    // (seccomp/policy.ts, `devices`).
    if (!lockedDown) {
      lockDownThread("devices", "petasan-devices", host.seccomp);
      lockedDown = true;
    }
    vm.ready();
  } catch (e) {
    data.port.postMessage({ kind: "failed", error: oneLine(e) });
    if (vm) vm.close();
    else data.port.close();
  }
}

try {
  for (;;) {
    while (toAdd.length > 0) await addVm(toAdd.shift()!);
    if (exiting) break;
    loop.run();
  }
} catch (e) {
  // The thread itself failed (epoll_wait, or an add that could not even report): every VM on it has ended.
  parentPort!.postMessage({ kind: "host-failed", error: oneLine(e) } satisfies DeviceHostEvent);
} finally {
  for (const vm of [...vms]) vm.close();
  loop.close();
  host.port.close();
}
