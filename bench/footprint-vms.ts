/**
 * Child process of footprint.ts: boots VMs one after the other in this one process through the library
 * (`createVm`), each 1 vCPU with the given RAM. Once a VM's guest has printed "IDLE" (the default init with
 * bench.mode=idle, which then sleeps 5 s) and had `settleMs` to settle, it is paused, so that it still holds all
 * it holds while idle (its threads, its RAM) but does not reboot while the next one boots; then this prints
 * "READY <k>" (k VMs idle) and waits for a line on stdin before booting the next. After the last it waits for one
 * more line, stops every VM and exits.
 *
 * Usage: node dist/bench/footprint-vms.js <kernel> <initrd> <cmdline> <mem MiB> <count> <settle ms>
 */
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { createVm, type VirtualMachine } from "../src/index.js";
import { BenchError } from "./bench-error.js";

/** The init's line once idle (the guest's tty turns "\n" into "\r\n"). */
const IDLE = /IDLE\r?\n/;
const BOOT_TIMEOUT_MS = 300_000;

async function bootUntilIdle(kernel: string, initrd: string, cmdline: string, memMiB: number): Promise<VirtualMachine> {
  const vm = createVm({
    "boot-source": { kernel_image_path: kernel, initrd_path: initrd, boot_args: cmdline },
    "machine-config": { vcpu_count: 1, mem_size_mib: memMiB },
  }, { log: { level: "Warning", fd: 2 } });
  let out = "";
  const idle = new Promise<void>((resolve, reject) => {
    vm.console.setEncoding("latin1").on("data", (d: string) => {
      out = (out + d).slice(-4096);
      if (IDLE.test(out)) resolve();
    });
    void vm.exited.then((e) => reject(new BenchError(`the VM ended before its guest was idle (${e.message}); console:\n${out}`)));
  });
  await vm.start();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([idle, new Promise((_, reject) => (timer = setTimeout(() => reject(new BenchError(`no IDLE within ${BOOT_TIMEOUT_MS} ms; console:\n${out}`)), BOOT_TIMEOUT_MS)))])
    .finally(() => clearTimeout(timer));
  return vm;
}

async function main(argv: string[]): Promise<void> {
  const [kernel, initrd, cmdline, mem, count, settle] = argv;
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  const vms: VirtualMachine[] = [];
  try {
    for (let k = 1; k <= Number(count); k++) {
      const vm = await bootUntilIdle(kernel, initrd, cmdline, Number(mem));
      vms.push(vm);
      await sleep(Number(settle));
      await vm.pause();
      process.stdout.write(`READY ${k}\n`);
      await lines.next();
    }
  } finally {
    await Promise.all(vms.map((vm) => vm.stop()));
  }
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`footprint-vms: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
