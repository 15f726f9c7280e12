/**
 * petasan as a library, used as a user would: `import ... from "petasan"` (the package's name, resolved
 * through its `exports`), the programs in examples/ run from a package that depends on petasan, and the
 * README's example kept identical to one of them. Real VMs on small test guests (no Linux boot).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createVm, VmConfigError, VmStateError, type VirtualMachine } from "petasan";
import { buildTestGuest } from "../guests/build.js";
import { kvmSkipReason } from "./kvm-available.js";

const skip = kvmSkipReason();
/** The package root (this file runs from dist/test/integration/). */
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const RUN_TIMEOUT_MS = 60_000;

/** A directory holding a package that depends on petasan, as `npm install ../petasan` would leave it. */
function consumerPackage(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "petasan-consumer-"));
  writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "consumer", type: "module", dependencies: { petasan: `file:${ROOT}` } }));
  mkdirSync(path.join(dir, "node_modules"));
  symlinkSync(ROOT, path.join(dir, "node_modules", "petasan"));
  return dir;
}

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runNode(cwd: string, args: string[]): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd, timeout: RUN_TIMEOUT_MS }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : null) : 0, stdout, stderr });
    });
  });
}

/** Runs examples/<name>.ts (compiled) from a consumer package, importing petasan by name. */
async function runExample(name: string, args: string[]): Promise<Ran> {
  const dir = consumerPackage();
  try {
    copyFileSync(path.join(ROOT, "dist/examples", `${name}.js`), path.join(dir, `${name}.js`));
    return await runNode(dir, [`${name}.js`, ...args]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const explain = (r: Ran) => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

test("the README's library example is examples/hello-vm.ts, word for word", () => {
  const readme = readFileSync(path.join(ROOT, "README.md"), "utf8");
  const example = readFileSync(path.join(ROOT, "examples/hello-vm.ts"), "utf8");
  const block = readme.match(/## Library\n[\s\S]*?```ts\n([\s\S]*?)```/);
  assert.ok(block, "the README has a Library section with a ts block");
  assert.equal(block[1], example);
});

test("examples/hello-vm: a package depending on petasan boots a VM from a config object and reads its console as a stream", { skip }, async () => {
  const run = await runExample("hello-vm", [await buildTestGuest("long64")]);
  assert.match(run.stdout, /long64: hello from 64-bit\n/, explain(run));
  assert.match(run.stderr, /VM ended: guest-reset/, explain(run));
  assert.equal(run.code, 0, explain(run));
});

test("examples/two-vms: two VMs in one process, one stopped while the other runs on", { skip }, async () => {
  const run = await runExample("two-vms", [await buildTestGuest("echo")]);
  assert.match(run.stdout, /\[a\] echo: ready\n/, explain(run));
  assert.match(run.stdout, /a: stopped; b is Running\n/, explain(run));
  assert.match(run.stdout, /\[b\] STILL HERE\n\[b\] echo: bye\n/, explain(run));
  assert.match(run.stdout, /b: guest-reset\n/, explain(run));
  assert.equal(run.code, 0, explain(run));
});

test("the package's type declarations check a user's TypeScript program", async () => {
  const dir = consumerPackage();
  try {
    writeFileSync(
      path.join(dir, "main.ts"),
      `import { createVm, type VmExit, type VmMetrics } from "petasan";
const vm = createVm({ "boot-source": { kernel_image_path: "vmlinux" }, drives: [{ drive_id: "rootfs", path_on_host: "rootfs.ext4", is_root_device: true }] });
vm.on("state", (state) => { const s: "Created" | "Starting" | "Running" | "Paused" | "Stopped" = state; void s; });
const exit: Promise<VmExit> = vm.exited;
const metrics: Promise<VmMetrics> = vm.metrics();
void exit; void metrics;
// @ts-expect-error: not a VmConfig field
createVm({ "boot-source": { kernel_image_path: "vmlinux" }, "machine-config": { vcpus: 2 } });
`,
    );
    writeFileSync(
      path.join(dir, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: { module: "NodeNext", moduleResolution: "NodeNext", target: "ES2022", strict: true, noEmit: true, types: ["node"], typeRoots: [path.join(ROOT, "node_modules/@types")] },
        files: ["main.ts"],
      }),
    );
    const run = await runNode(dir, [path.join(ROOT, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"]);
    assert.equal(run.code, 0, explain(run));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("createVm checks the config at once and names the bad field", () => {
  assert.throws(() => createVm({} as never), (e: unknown) => e instanceof VmConfigError && /boot-source/.test(e.message));
  assert.throws(() => createVm("{not json"), VmConfigError);
  assert.throws(
    () => createVm({ "boot-source": { kernel_image_path: "k" }, "machine-config": { vcpu_count: 0, mem_size_mib: 64 } }),
    (e: unknown) => e instanceof VmConfigError && e.field === "machine-config.vcpu_count",
  );
  // Firecracker's config file, as text, is accepted as is.
  const vm = createVm(JSON.stringify({ "boot-source": { kernel_image_path: "vmlinux", boot_args: "console=ttyS0" }, "machine-config": { vcpu_count: 2, mem_size_mib: 256 } }));
  assert.equal(vm.config["machine-config"].vcpu_count, 2);
  assert.equal(vm.state, "Created");
});

const openFds = () => readdirSync("/proc/self/fd").length;
const threads = () => readdirSync("/proc/self/task").length;

/** Collects a VM's console output; `waitFor` polls it. */
function collect(vm: VirtualMachine): { text: () => string; waitFor: (s: string) => Promise<void> } {
  let out = "";
  vm.console.setEncoding("utf8");
  vm.console.on("data", (d: string) => (out += d));
  return {
    text: () => out,
    waitFor: async (s) => {
      const deadline = Date.now() + RUN_TIMEOUT_MS;
      while (!out.includes(s)) {
        if (Date.now() > deadline) throw new Error(`no "${s}" on the console; got:\n${out}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

async function twoEchoVms(kernel: string): Promise<void> {
  const config = { "boot-source": { kernel_image_path: kernel }, "machine-config": { vcpu_count: 1, mem_size_mib: 64 } };
  const a = createVm(config);
  const b = createVm(config);
  const states: string[] = [];
  b.on("state", (s) => states.push(s));
  const outA = collect(a);
  const outB = collect(b);
  await Promise.all([a.start(), b.start()]);
  await Promise.all([outA.waitFor("echo: ready\n"), outB.waitFor("echo: ready\n")]);

  assert.equal((await a.stop()).reason, "stopped");
  assert.equal(a.state, "Stopped");
  assert.equal(b.state, "Running");
  await b.pause();
  await b.resume();
  b.console.write("b runs on");
  await outB.waitFor("B RUNS ON");
  const metrics = await b.metrics();
  assert.ok(metrics.devices.uart.rxBytes >= "b runs on".length, JSON.stringify(metrics));
  assert.ok(metrics.vcpus[0].io_out > 0);
  // The vCPU thread's CPU time: booting and echoing cost some, and it is read while the thread lives.
  assert.equal(metrics.vcpuCpuTimeUs.length, 1);
  assert.ok(metrics.vcpuCpuTimeUs[0] > 0, JSON.stringify(metrics.vcpuCpuTimeUs));
  b.console.write("q");
  const exit = await b.exited;
  assert.equal(exit.reason, "guest-reset");
  assert.deepEqual(states, ["Starting", "Running", "Paused", "Running", "Stopped"]);
  // Both consoles end once their VM has ended.
  await Promise.all([a.console, b.console].map((c) => new Promise((r) => (c.readableEnded ? r(null) : c.once("end", r)))));
  assert.equal(outA.text().includes("B RUNS ON"), false);
}

test("two VMs in one process are independent, and release every fd, thread and the kick handler", { skip }, async () => {
  const kernel = await buildTestGuest("echo");
  const sigusr2 = process.listenerCount("SIGUSR2");
  // The first run loads modules and starts libuv's thread pool: count after it.
  await twoEchoVms(kernel);
  const fds = openFds();
  const tasks = threads();
  await twoEchoVms(kernel);
  // Worker threads are reaped asynchronously after terminate(); give them a moment.
  for (let i = 0; i < 50 && (openFds() !== fds || threads() !== tasks); i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(openFds(), fds, "fds before and after");
  assert.equal(threads(), tasks, "threads before and after");
  assert.equal(process.listenerCount("SIGUSR2"), sigusr2, "the kick handler is removed with the last vCPU");
});

test("lifecycle misuse is refused with VmStateError; a VM that never started stops cleanly", { skip }, async () => {
  const vm = createVm({ "boot-source": { kernel_image_path: await buildTestGuest("echo") } });
  await assert.rejects(vm.pause(), VmStateError);
  assert.throws(() => vm.sendCtrlAltDel(), VmStateError);
  const exit = await vm.stop();
  assert.equal(exit.reason, "stopped");
  await assert.rejects(vm.start(), VmStateError);
  assert.equal(vm.console.read(), null);
});

test("a failed start rejects with the failed step, resolves `exited`, and leaks no fd", { skip }, async () => {
  const fds = openFds();
  const vm = createVm({ "boot-source": { kernel_image_path: "/nonexistent/vmlinux" } });
  await assert.rejects(vm.start(), /reading kernel \/nonexistent\/vmlinux/);
  const exit = await vm.exited;
  assert.equal(exit.reason, "internal-error");
  assert.equal(vm.state, "Stopped");
  for (let i = 0; i < 50 && openFds() !== fds; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(openFds(), fds);
});

test("log lines arrive as events", { skip }, async () => {
  const lines: string[] = [];
  const vm = createVm({ "boot-source": { kernel_image_path: await buildTestGuest("long64") }, logger: { level: "Info" } }, { console: "none" });
  vm.on("log", (line) => lines.push(line));
  await vm.start();
  await vm.exited;
  assert.equal(lines.length, 2, lines.join("\n"));
  assert.match(lines[0], /VM started \(1 vCPUs, 128 MiB\)$/);
  assert.match(lines[1], /VM ended \(guest-reset, exit code 0\)/);
});
