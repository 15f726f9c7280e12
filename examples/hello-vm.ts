// Boots the kernel named on the command line with Firecracker's config-file JSON, copies the guest's
// serial console to stdout, and exits with the VM's exit code. Run: node dist/examples/hello-vm.js KERNEL
import { createVm } from "petasan";

const vm = createVm({
  "boot-source": { kernel_image_path: process.argv[2], boot_args: "console=ttyS0 reboot=k panic=-1" },
  "machine-config": { vcpu_count: 1, mem_size_mib: 128 },
});
vm.console.pipe(process.stdout);
vm.on("log", (line) => console.error(line));

await vm.start();
const exit = await vm.exited;
console.error(`VM ended: ${exit.reason} (${exit.message})`);
process.exitCode = exit.exitCode;
