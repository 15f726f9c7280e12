// Two VMs in one process, independent of each other: both boot the echo test guest (it echoes serial input
// uppercased; "q" makes it reset the machine). The first is stopped while the second runs on and still
// answers. Run: node dist/examples/two-vms.js ECHO_GUEST_ELF
import { createVm, type VirtualMachine } from "petasan";

const kernel = process.argv[2];
const config = { "boot-source": { kernel_image_path: kernel }, "machine-config": { vcpu_count: 1, mem_size_mib: 64 } };

/** Prints a VM's console lines with its name; `waitFor` resolves once its output contains `text`. */
function watch(name: string, vm: VirtualMachine) {
  let output = "";
  let printed = 0;
  const waiters: { text: string; resolve: () => void }[] = [];
  vm.console.setEncoding("utf8");
  vm.console.on("data", (text: string) => {
    output += text;
    const end = output.lastIndexOf("\n") + 1;
    for (const line of output.slice(printed, end).split("\n").slice(0, -1)) console.log(`[${name}] ${line}`);
    printed = Math.max(printed, end);
    for (const w of waiters.filter((w) => output.includes(w.text))) w.resolve();
  });
  return {
    waitFor: (text: string) => new Promise<void>((resolve) => (output.includes(text) ? resolve() : waiters.push({ text, resolve }))),
  };
}

const a = createVm(config);
const b = createVm(config);
const consoleA = watch("a", a);
const consoleB = watch("b", b);
await Promise.all([a.start(), b.start()]);
await Promise.all([consoleA.waitFor("echo: ready\n"), consoleB.waitFor("echo: ready\n")]);

const exitA = await a.stop();
console.log(`a: ${exitA.reason}; b is ${b.state}`);

b.console.write("still here");
await consoleB.waitFor("STILL HERE");
b.console.write("q");
const exitB = await b.exited;
console.log(`b: ${exitB.reason}`);
