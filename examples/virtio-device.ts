// Boots the kernel named on the command line with a virtio device written in TypeScript (./ram-disk.ts,
// a virtio-blk disk held in memory), copies the guest's console to stdout, and stops the VM once the guest
// says "virtio-blk: done" (test/guests/virtio-blk.c drives the disk, then halts), printing the disk's counters.
// Run: node dist/examples/virtio-device.js KERNEL
import { createVm } from "petasan";

const vm = createVm(
  { "boot-source": { kernel_image_path: process.argv[2] } },
  { devices: [{ name: "ramdisk", bus: "virtio", queues: 1, module: new URL("./ram-disk.js", import.meta.url), options: { sectors: 2048 } }] },
);
vm.on("log", (line) => console.error(line));

let output = "";
let stopping = false;
vm.console.setEncoding("utf8");
vm.console.on("data", async (text: string) => {
  process.stdout.write(text);
  output += text;
  if (output.includes("virtio-blk: done\n") && !stopping) {
    stopping = true;
    const { devices } = await vm.metrics();
    console.log(`ramdisk counters: ${JSON.stringify(devices.user_ramdisk)}`);
    await vm.stop("the guest is done");
  }
});

await vm.start();
const exit = await vm.exited;
console.error(`VM ended: ${exit.reason}`);
process.exitCode = exit.exitCode;
