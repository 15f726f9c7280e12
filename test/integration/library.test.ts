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
import { createVm, UserDeviceConfigError, VmConfigError, VmStateError, type VirtualMachine } from "petasan";
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
const threadNames = () => readdirSync("/proc/self/task").map((t) => readFileSync(`/proc/self/task/${t}/comm`, "utf8").trim());

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
  // One device thread serves both (it names itself once their devices are open).
  assert.deepEqual(threadNames().filter((n) => n.startsWith("petasan")).sort(), ["petasan-devices", "petasan-vcpu0", "petasan-vcpu0"]);

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

test("a VM whose devices fail to open on the shared device thread fails alone; the VM already on it runs on", { skip }, async () => {
  const kernel = await buildTestGuest("echo");
  const fds = openFds();
  const a = createVm({ "boot-source": { kernel_image_path: kernel } });
  const outA = collect(a);
  await a.start();
  await outA.waitFor("echo: ready\n");
  const b = createVm({ "boot-source": { kernel_image_path: kernel }, drives: [{ drive_id: "gone", path_on_host: "/nonexistent/disk.img", is_root_device: false, is_read_only: true }] });
  await assert.rejects(b.start(), /gone.*\/nonexistent\/disk\.img|\/nonexistent\/disk\.img.*gone/);
  assert.equal((await b.exited).reason, "internal-error");
  assert.equal(a.state, "Running");
  a.console.write("still served");
  await outA.waitFor("STILL SERVED");
  assert.equal((await a.stop()).reason, "stopped");
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

test("examples/user-device: a device written in TypeScript, loaded onto the device thread, driven by its test guest", { skip }, async () => {
  const dir = consumerPackage();
  try {
    for (const file of ["user-device.js", "sum-device.js"]) copyFileSync(path.join(ROOT, "dist/examples", file), path.join(dir, file));
    const run = await runNode(dir, ["user-device.js", await buildTestGuest("user-device")]);
    assert.match(run.stdout, /user-device: sum=55\nuser-device: HELLO FROM THE GUEST\nuser-device: interrupt\n/, explain(run));
    assert.equal(run.code, 0, explain(run));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a user device with shared state is served on the vCPU thread: none of its accesses is handed to the device thread", { skip }, async () => {
  const vm = createVm(
    { "boot-source": { kernel_image_path: await buildTestGuest("user-device") } },
    { devices: [{ name: "sum", module: new URL("../../examples/sum-device.js", import.meta.url), bus: "pio", base: 0x700, length: 12, irq: 5, sharedStateBytes: 4, options: { start: 0 } }] },
  );
  const out = collect(vm);
  let ended = false;
  void vm.exited.then(() => { ended = true; });
  await vm.start();
  // The guest resets once it has seen its interrupt: the metrics are read while it runs, the last ones kept.
  let metrics: Awaited<ReturnType<typeof vm.metrics>> | undefined;
  while (!ended) {
    const m = await vm.metrics().catch(() => undefined);
    if (m?.devices.user_sum) metrics = m;
    await new Promise((r) => setTimeout(r, 2));
  }
  assert.match(out.text(), /user-device: sum=55\nuser-device: HELLO FROM THE GUEST\nuser-device: interrupt\n/);
  assert.ok(metrics, "metrics were read while the guest ran");
  const device = metrics.devices.user_sum as { reads: number; writes: number };
  assert.ok(device.writes >= 1, JSON.stringify(device));
  // Every exit this guest makes is a port or MMIO register that a vCPU thread serves (COM1, the i8042, the sum device).
  assert.equal(metrics.vcpus[0].handed_over, 0, JSON.stringify(metrics.vcpus[0]));
});

test("user devices placed where they cannot work are refused by createVm, naming the device", () => {
  const config = { "boot-source": { kernel_image_path: "k" } };
  const device = { name: "d", module: "/x.js", bus: "pio" as const, base: 0x700, length: 8 };
  const refused = (devices: object[], pattern: RegExp) =>
    assert.throws(() => createVm(config, { devices: devices as never }), (e: unknown) => e instanceof UserDeviceConfigError && pattern.test(e.message));
  refused([{ ...device, base: 0x80, length: 1 }], /devices\[0\]: pio 0x80\+0x1 overlaps the io_delay port/);
  refused([{ ...device, base: 0xfffe, length: 4 }], /outside 0x0\.\.0x10000/);
  refused([{ ...device, bus: "mmio", base: 0xd000_0000, length: 0x1000 }], /overlaps petasan's virtio-mmio window/);
  refused([{ ...device, bus: "mmio", base: 0x1000, length: 0x1000 }], /outside 0xc0000000\.\.0x100000000/);
  refused([device, { ...device, base: 0x710 }], /devices\[1\]\.name: "d" is already used/);
  refused([{ ...device, irq: 4 }], /devices\[0\]\.irq/);
  refused([{ ...device, name: "a b" }], /devices\[0\]\.name/);
  refused([{ ...device, sharedStateBytes: 0 }], /devices\[0\]\.sharedStateBytes: must be an integer from 1/);
  refused([{ name: "v", module: "/x.js", bus: "virtio", queues: 1, sharedStateBytes: 4 }], /devices\[0\]\.sharedStateBytes: only for "pio" and "mmio" devices/);
});

/** Writes a device module into a temporary directory and returns its path. */
function deviceModule(source: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), "petasan-device-"));
  const file = path.join(dir, "device.mjs");
  writeFileSync(file, source);
  return file;
}

test("a user device that fails to load, or to be made, or clashes with a device, fails start() with one line and leaks nothing", { skip }, async () => {
  const kernel = await buildTestGuest("user-device");
  const fds = openFds();
  const cases: [string, object, RegExp][] = [
    ["missing module", { module: "/nonexistent/device.mjs" }, /^device d: cannot load file:\/\/\/nonexistent\/device\.mjs/],
    ["no default export", { module: deviceModule("export const x = 1;\n") }, /^device d: .* has no default export/],
    ["factory throws", { module: deviceModule("export default () => { throw new Error('no disk'); };\n") }, /^device d: its factory failed: no disk$/],
    ["not a device", { module: deviceModule("export default () => 42;\n") }, /^device d: its factory returned no device/],
    ["clash with COM1", { module: deviceModule("export default () => ({ read() {}, write() {} });\n"), base: 0x3f8 }, /^device d: pio range 0x3f8\+0x8 for user device d overlaps COM1/],
    // The VM's virtio-rng device takes the first free GSI, 5.
    ["irq of a virtio device", { module: deviceModule("export default () => ({ read() {}, write() {} });\n"), irq: 5 }, /^device d: irq 5 is taken by one of petasan's devices/],
  ];
  for (const [what, spec, pattern] of cases) {
    const vm = createVm({ "boot-source": { kernel_image_path: kernel }, entropy: {} }, { console: "none", devices: [{ name: "d", bus: "pio", base: 0x700, length: 8, ...spec } as never] });
    await assert.rejects(vm.start(), (e: Error) => pattern.test(e.message) && !e.message.includes("\n"), what);
    assert.equal((await vm.exited).reason, "internal-error");
  }
  for (let i = 0; i < 50 && openFds() !== fds; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(openFds(), fds);
});

test("a user device that throws on an access is answered with all ones and logged once; the guest runs on", { skip }, async () => {
  const module = deviceModule("export default () => ({ read() { throw new Error('broken'); }, write() { throw new Error('broken'); } });\n");
  const vm = createVm(
    { "boot-source": { kernel_image_path: await buildTestGuest("user-device") } },
    { devices: [{ name: "broken", module, bus: "pio", base: 0x700, length: 8 }] },
  );
  const lines: string[] = [];
  vm.on("log", (line) => lines.push(line));
  const out = collect(vm);
  await vm.start();
  // The guest then waits for an interrupt this device never raises.
  await out.waitFor("user-device: hello from the guest\n");
  assert.equal((await vm.stop()).reason, "stopped");
  assert.match(out.text(), /user-device: sum=4294967295\nuser-device: hello from the guest\n/);
  const failures = lines.filter((l) => l.includes("device broken:"));
  assert.equal(failures.length, 1, lines.join("\n"));
  assert.match(failures[0], /write at offset 0x0 threw \(broken\); further failures are only counted/);
});

test("examples/virtio-device: a virtio-blk disk written in TypeScript, on petasan's transport and queues, driven by the virtio-blk test guest", { skip }, async () => {
  const dir = consumerPackage();
  try {
    for (const file of ["virtio-device.js", "ram-disk.js"]) copyFileSync(path.join(ROOT, "dist/examples", file), path.join(dir, file));
    const run = await runNode(dir, ["virtio-device.js", await buildTestGuest("virtio-blk")]);
    assert.match(run.stdout, /virtio-blk: capacity 2048 sectors\nvirtio-blk: wrote\+flushed pattern, status 0\nvirtio-blk: read back matches, status 0, used len 4097\nvirtio-blk: done\n/, explain(run));
    assert.match(run.stdout, /ramdisk counters: \{"reads":1,"writes":1,"flushes":1,"badRequests":0,"transport":\{"notifies":3,/, explain(run));
    assert.match(run.stderr, /VM ended: stopped/, explain(run));
    assert.equal(run.code, 0, explain(run));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a user virtio device completes the guest's broken descriptor chains and goes on", { skip }, async () => {
  const vm = createVm(
    { "boot-source": { kernel_image_path: await buildTestGuest("virtio-blk"), boot_args: "console=ttyS0 hostile" } },
    { devices: [{ name: "ramdisk", bus: "virtio", queues: 1, module: new URL("../../examples/ram-disk.js", import.meta.url) }] },
  );
  const lines: string[] = [];
  vm.on("log", (line) => lines.push(line));
  const out = collect(vm);
  await vm.start();
  await out.waitFor("virtio-blk: done\n");
  const ramdisk = (await vm.metrics()).devices.user_ramdisk as unknown as { badRequests: number; transport: { deviceFailures: number } };
  await vm.stop();
  assert.match(out.text(), /hostile chain outside RAM completed, status 255, used len 0\n/);
  assert.match(out.text(), /hostile looping chain completed, status 255, used len 0\n/);
  assert.match(out.text(), /read after hostile chains matches/);
  assert.equal(ramdisk.badRequests, 2);
  assert.equal(ramdisk.transport.deviceFailures, 0);
  assert.equal(lines.filter((l) => l.includes("device ramdisk: bad request")).length, 1, lines.join("\n"));
});

test("user virtio devices: a bad queue count is refused by createVm; a factory that makes no virtio device fails start()", { skip }, async () => {
  const config = { "boot-source": { kernel_image_path: await buildTestGuest("virtio-blk") } };
  assert.throws(() => createVm(config, { devices: [{ name: "v", bus: "virtio", queues: 0, module: "/x.mjs" }] }), /devices\[0\]\.queues: must be 1 to 8/);
  const module = deviceModule("export default () => ({ deviceType: 2, features: 0n, queueMaxSizes: [256, 256], readConfig() {}, writeConfig() {}, activate() {}, processQueue() {}, reset() {} });\n");
  const vm = createVm(config, { console: "none", devices: [{ name: "v", bus: "virtio", queues: 1, module }] });
  await assert.rejects(vm.start(), /: virtio-user v: its factory returned no usable virtio device: queueMaxSizes must list 1 queue sizes/);
});
