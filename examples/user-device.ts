// Boots the kernel named on the command line with a device written in TypeScript (./sum-device.ts) on
// ports 0x700-0x70b with ISA IRQ 5, served on the vCPU thread, and copies the guest's console to stdout.
// Run: node dist/examples/user-device.js KERNEL (test/guests/user-device.c drives the device)
import { createVm } from "petasan";

const vm = createVm(
  { "boot-source": { kernel_image_path: process.argv[2] } },
  // sharedStateBytes: the device keeps its sum in shared memory, so the vCPU thread serves its ports itself.
  { devices: [{ name: "sum", module: new URL("./sum-device.js", import.meta.url), bus: "pio", base: 0x700, length: 12, irq: 5, sharedStateBytes: 4 }] },
);
vm.console.pipe(process.stdout);
vm.on("log", (line) => console.error(line));

await vm.start();
const exit = await vm.exited;
console.error(`VM ended: ${exit.reason}`);
process.exitCode = exit.exitCode;
