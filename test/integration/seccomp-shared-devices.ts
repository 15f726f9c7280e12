/**
 * Run by seccomp.test.ts as its own process (a system call outside a filter ends the process), inside a network
 * namespace of its own (`unshare -n`: the tap is made there). VM a starts with petasan's default filters, so the
 * process's device thread narrows itself; VM b, with the same filters, then opens a drive, virtio-rng, vsock and a
 * tap on that thread, under its filter; VM c, without filters, gets a device thread of its own. Prints the device
 * threads after each start, then how each VM ended. Arguments: the echo test guest, a scratch directory.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createVm } from "../../src/lib/index.js";
import { compileSeccompPolicy } from "../../src/lib/seccomp.js";

const [kernel, dir] = process.argv.slice(2);
const filters = compileSeccompPolicy();
const seccomp = { devices: filters.devices, vcpu: filters.vcpu };
const config = { "boot-source": { kernel_image_path: kernel }, "machine-config": { vcpu_count: 1, mem_size_mib: 64 } };
const deviceThreads = () => readdirSync("/proc/self/task").filter((t) => readFileSync(`/proc/self/task/${t}/comm`, "utf8").trim() === "petasan-devices").length;

const disk = path.join(dir, "disk.img");
writeFileSync(disk, Buffer.alloc(1 << 20));
const a = createVm(config, { seccomp, console: "none" });
await a.start();
console.log(`a: ${deviceThreads()} device thread(s)`);
const b = createVm({
  ...config,
  drives: [{ drive_id: "scratch", path_on_host: disk, is_root_device: false, is_read_only: false }],
  entropy: {},
  vsock: { guest_cid: 3, uds_path: path.join(dir, "v.sock") },
  "network-interfaces": [{ iface_id: "eth0", host_dev_name: "petasan-t0" }],
}, { seccomp, console: "none" });
await b.start();
console.log(`b: ${deviceThreads()} device thread(s)`);
const c = createVm(config, { console: "none" });
await c.start();
console.log(`c: ${deviceThreads()} device thread(s)`);
for (const [name, vm] of [["b", b], ["a", a], ["c", c]] as const) console.log(`${name}: ${(await vm.stop()).reason}, state ${a.state}/${b.state}/${c.state}`);
