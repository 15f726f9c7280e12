/**
 * Snapshot and restore end to end on a real /dev/kvm, through Firecracker's API, with the `counter` test guest
 * (counts at ring 3 and prints "counter: <hex>" lines):
 * - snapshot mid-run, kill the VMM, restore in a new process: the count goes on from where it stopped;
 * - ten clones restored from one snapshot all run;
 * - a Diff snapshot holds about as many pages as the guest dirtied;
 * - every kind of bad state or memory file is refused with a 400 naming the problem, and the process can still
 *   restore a good snapshot afterwards (nothing half-restored is left running);
 * - through the library, loadSnapshot() reads the state file once: start() restores what it read.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { requestOverSocket, type ApiResponse } from "../../src/api/api-client.js";
import { buildTestGuest } from "../guests/build.js";
import { kvmSkipReason } from "./kvm-available.js";
import { runPetasan, startPetasan, type Running } from "./petasan-process.js";
import { faultOf, waitForApi } from "./api-process.js";
import { createVm, loadSnapshot } from "../../src/lib/index.js";

const skip = kvmSkipReason() ?? false;
const PROCESS_TIMEOUT_MS = 60_000;
const MEM_MIB = 32;

const workDir = mkdtempSync(path.join(tmpdir(), "petasan-snapshot-test-"));
const children: Running[] = [];
let socketCount = 0;
after(() => {
  for (const c of children) c.child.kill("SIGKILL");
  rmSync(workDir, { recursive: true, force: true });
});

interface Vmm {
  proc: Running;
  sock: string;
  api(method: string, url: string, body?: object): Promise<ApiResponse>;
}

async function startApi(): Promise<Vmm> {
  const sock = path.join(workDir, `api-${socketCount++}.sock`);
  const proc = startPetasan(["--api-sock", sock], PROCESS_TIMEOUT_MS);
  children.push(proc);
  await waitForApi(sock, proc);
  return { proc, sock, api: (method, url, body) => requestOverSocket(sock, method, url, body) };
}

function ok(r: ApiResponse): void {
  assert.equal(r.status, 204, r.text);
}

/** Every counter value printed so far. */
function counts(out: string): number[] {
  return [...out.matchAll(/counter: ([0-9a-f]{16})\n/g)].map((m) => parseInt(m[1], 16));
}

async function untilCount(vmm: Vmm, atLeast: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Math.max(0, ...counts(vmm.proc.stdout())) < atLeast) {
    if (Date.now() > deadline) throw new Error(`no counter ${atLeast} within 30 s; stdout:\n${vmm.proc.stdout()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

let kernel = "";
before(async () => {
  if (!skip) kernel = await buildTestGuest("counter");
});

/** Boots the counter guest, lets it count to `n`, pauses it and takes a snapshot. */
async function bootAndSnapshot(name: string, n: number, machine: object = {}): Promise<{ vmm: Vmm; snap: string; mem: string; last: number }> {
  const vmm = await startApi();
  ok(await vmm.api("PUT", "/boot-source", { kernel_image_path: kernel }));
  ok(await vmm.api("PUT", "/machine-config", { vcpu_count: 1, mem_size_mib: MEM_MIB, ...machine }));
  ok(await vmm.api("PUT", "/actions", { action_type: "InstanceStart" }));
  await untilCount(vmm, n);
  assert.match(faultOf(await vmm.api("PUT", "/snapshot/create", { snapshot_path: "/tmp/x", mem_file_path: "/tmp/y" })), /must be paused/);
  ok(await vmm.api("PATCH", "/vm", { state: "Paused" }));
  const snap = path.join(workDir, `${name}.snap`);
  const mem = path.join(workDir, `${name}.mem`);
  ok(await vmm.api("PUT", "/snapshot/create", { snapshot_type: "Full", snapshot_path: snap, mem_file_path: mem }));
  // Let the last line in flight reach stdout: the vCPU is paused, nothing more is printed.
  await new Promise((r) => setTimeout(r, 200));
  return { vmm, snap, mem, last: Math.max(...counts(vmm.proc.stdout())) };
}

test("snapshot mid-run, kill the VMM, restore in a new process: the counter goes on", { skip }, async () => {
  const { vmm, snap, mem, last } = await bootAndSnapshot("counter", 3);
  assert.equal(statSync(mem).size, MEM_MIB * 1024 * 1024);
  vmm.proc.child.kill("SIGKILL");
  await vmm.proc.finished;

  const restored = await startApi();
  // Firecracker's rules: not after configuring a boot resource; mem_file_path xor mem_backend; Uffd refused.
  assert.match(faultOf(await restored.api("PUT", "/snapshot/load", { snapshot_path: snap })), /either `mem_backend` or `mem_file_path` is required/);
  assert.match(faultOf(await restored.api("PUT", "/snapshot/load", { snapshot_path: snap, mem_backend: { backend_type: "Uffd", backend_path: "/x" } })), /Uffd is not supported/);
  ok(await restored.api("PUT", "/snapshot/load", { snapshot_path: snap, mem_backend: { backend_type: "File", backend_path: mem }, resume_vm: true }));
  assert.equal((((await restored.api("GET", "/")).json) as { state: string }).state, "Running");
  await untilCount(restored, last + 2);
  // The two processes' output joins into one exact stream: no byte of a line cut by the snapshot is lost or
  // repeated (an OUT to the UART whose exit was not completed before the state was saved would be replayed).
  const joined = vmm.proc.stdout() + restored.proc.stdout();
  const whole = joined.slice(0, joined.lastIndexOf("\n") + 1).split("\n").slice(0, -1);
  whole.forEach((line, i) => assert.equal(line, `counter: ${(i + 1).toString(16).padStart(16, "0")}`, `line ${i + 1} of the joined output:\n${joined}`));
  // Saving the restored VM over the files it came from (its RAM is mapped from that memory file) is safe.
  ok(await restored.api("PATCH", "/vm", { state: "Paused" }));
  ok(await restored.api("PUT", "/snapshot/create", { snapshot_path: snap, mem_file_path: mem }));
  ok(await restored.api("PATCH", "/vm", { state: "Resumed" }));
  await untilCount(restored, last + 3);
  const after = counts(restored.proc.stdout());
  // The first whole line is the next count, or the one after if the snapshot cut a line in half (its tail is
  // printed by the restored VM, and only whole lines are counted).
  assert.ok(after[0] === last + 1 || after[0] === last + 2, `the restored guest prints ${after[0]} first; the last count before the snapshot was ${last}\nfirst process:\n${vmm.proc.stdout().slice(-200)}\nrestored:\n${restored.proc.stdout().slice(0, 200)}`);
  assert.match(faultOf(await restored.api("PUT", "/snapshot/load", { snapshot_path: snap, mem_file_path: mem })), /not supported after starting/);
  restored.proc.child.kill("SIGKILL");

  // The CLI's equivalent: petasan restore --snapshot FILE --mem FILE, of the snapshot the restored VM saved.
  const cli = startPetasan(["restore", "--snapshot", snap, "--mem", mem, "--serial", "stdio"], PROCESS_TIMEOUT_MS);
  children.push(cli);
  await cli.waitFor(/counter: [0-9a-f]{16}\n/);
  assert.ok(counts(cli.stdout())[0] >= last + 3, `petasan restore goes on from the second snapshot: ${cli.stdout()}`);
  cli.child.kill("SIGKILL");
  const bad = await runPetasan(["restore", "--snapshot", mem, "--mem", mem], PROCESS_TIMEOUT_MS);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /petasan: .* is not a petasan snapshot file/);
});

test("ten clones restored from one snapshot all run, and the boot path refuses a load", { skip }, async () => {
  const { vmm, snap, mem, last } = await bootAndSnapshot("clones", 2);
  vmm.proc.child.kill("SIGKILL");
  const booted = await startApi();
  ok(await booted.api("PUT", "/boot-source", { kernel_image_path: kernel }));
  assert.match(faultOf(await booted.api("PUT", "/snapshot/load", { snapshot_path: snap, mem_file_path: mem })), /not allowed after configuring boot-specific resources/);
  booted.proc.child.kill("SIGKILL");

  const clones = await Promise.all(Array.from({ length: 10 }, () => startApi()));
  // Loaded paused, then resumed: the Firecracker way to start clones together.
  for (const c of clones) ok(await c.api("PUT", "/snapshot/load", { snapshot_path: snap, mem_file_path: mem }));
  for (const c of clones) assert.equal((((await c.api("GET", "/")).json) as { state: string }).state, "Paused");
  for (const c of clones) ok(await c.api("PATCH", "/vm", { state: "Resumed" }));
  await Promise.all(clones.map((c) => untilCount(c, last + 1)));
  for (const c of clones) c.proc.child.kill("SIGKILL");
});

test("a Diff snapshot holds about the pages the guest dirtied since the last snapshot", { skip }, async () => {
  const { vmm, mem, last: base } = await bootAndSnapshot("diff-base", 1, { track_dirty_pages: true });
  ok(await vmm.api("PATCH", "/vm", { state: "Resumed" }));
  await untilCount(vmm, base + 20);
  ok(await vmm.api("PATCH", "/vm", { state: "Paused" }));
  const diffMem = path.join(workDir, "diff.mem");
  const diffSnap = path.join(workDir, "diff.snap");
  ok(await vmm.api("PUT", "/snapshot/create", { snapshot_type: "Diff", snapshot_path: diffSnap, mem_file_path: diffMem }));
  await new Promise((r) => setTimeout(r, 200));
  const last = Math.max(...counts(vmm.proc.stdout()));
  vmm.proc.child.kill("SIGKILL");
  const full = statSync(mem);
  const diff = statSync(diffMem);
  assert.equal(diff.size, MEM_MIB * 1024 * 1024, "the Diff file has the RAM's size (sparse)");
  // Each line touches one page of its own; the count and the stack share a page or two more. A line cut by a
  // snapshot may have touched its page already.
  const touched = last - base;
  const pages = (diff.blocks * 512) / 4096;
  assert.ok(pages >= touched && pages <= touched + 4, `${touched} lines touched ${touched} pages; the Diff holds ${pages}`);
  assert.ok(full.blocks > diff.blocks, "the Full file holds more");

  // The Diff applied onto the Full memory file restores the VM as it was at the Diff.
  const merged = await runPetasan(["snapshot", "merge-memory", "--base", mem, "--diff", diffMem], PROCESS_TIMEOUT_MS);
  assert.equal(merged.code, 0, merged.stderr);
  const restored = await startApi();
  ok(await restored.api("PUT", "/snapshot/load", { snapshot_path: diffSnap, mem_file_path: mem, resume_vm: true, track_dirty_pages: true }));
  await untilCount(restored, last + 2);
  const first = counts(restored.proc.stdout())[0];
  assert.ok(first === last + 1 || first === last + 2, `restored from the merged layers, the guest prints ${first} first; the Diff was taken after ${last}`);

  // A restored VM (RAM mapped from the file) tracks its dirty pages too: its first Diff holds what it wrote since.
  await untilCount(restored, last + 6);
  ok(await restored.api("PATCH", "/vm", { state: "Paused" }));
  await new Promise((r) => setTimeout(r, 200));
  const upTo = Math.max(...counts(restored.proc.stdout()));
  const diff2 = path.join(workDir, "diff2.mem");
  ok(await restored.api("PUT", "/snapshot/create", { snapshot_type: "Diff", snapshot_path: path.join(workDir, "diff2.snap"), mem_file_path: diff2 }));
  const pages2 = (statSync(diff2).blocks * 512) / 4096;
  const touched2 = upTo - last;
  assert.ok(pages2 >= touched2 - 1 && pages2 <= touched2 + 4, `${touched2} lines since the load; the restored VM's Diff holds ${pages2} pages`);
  restored.proc.child.kill("SIGKILL");
});

test("bad snapshot and memory files are refused with a 400 naming the problem; a good one still loads after", { skip }, async () => {
  const { vmm, snap, mem, last } = await bootAndSnapshot("bad", 1);
  vmm.proc.child.kill("SIGKILL");
  const good = readFileSync(snap);
  const variant = (name: string, bytes: Uint8Array) => {
    const p = path.join(workDir, name);
    writeFileSync(p, bytes);
    return p;
  };
  const corrupted = Buffer.from(good);
  corrupted[corrupted.length - 10] ^= 0x55;
  const wrongVersion = Buffer.from(good);
  wrongVersion.writeUInt32LE(99, 8);
  const shortMem = path.join(workDir, "short.mem");
  copyFileSync(mem, shortMem);
  truncateSync(shortMem, 4096 * 10);
  const cases: [string, object, RegExp][] = [
    ["missing", { snapshot_path: path.join(workDir, "nope.snap"), mem_file_path: mem }, /cannot read snapshot file .*ENOENT/],
    ["truncated header", { snapshot_path: variant("t1.snap", good.subarray(0, 20)), mem_file_path: mem }, /truncated: 20 bytes/],
    ["truncated body", { snapshot_path: variant("t2.snap", good.subarray(0, good.length - 100)), mem_file_path: mem }, /is truncated: the body is/],
    ["foreign", { snapshot_path: variant("f.snap", Buffer.from("hello world, this is not a snapshot file at all..........")), mem_file_path: mem }, /not a petasan snapshot file/],
    ["corrupted", { snapshot_path: variant("c.snap", corrupted), mem_file_path: mem }, /corrupted: its SHA-256 checksum does not match/],
    ["wrong version", { snapshot_path: variant("v.snap", wrongVersion), mem_file_path: mem }, /format version 99; this petasan reads version 2 only \(take the snapshot again with this petasan\)/],
    ["short memory file", { snapshot_path: snap, mem_file_path: shortMem }, /memory file .* is 40960 bytes; the snapshot's guest has/],
    ["missing memory file", { snapshot_path: snap, mem_file_path: path.join(workDir, "nope.mem") }, /cannot open memory file .*ENOENT/],
    ["memory file is the state file", { snapshot_path: snap, mem_file_path: snap }, /memory file .* bytes; the snapshot's guest has/],
  ];
  const p = await startApi();
  for (const [what, body, pattern] of cases) {
    const r = await p.api("PUT", "/snapshot/load", body);
    assert.equal(r.status, 400, `${what}: ${r.text}`);
    assert.match(faultOf(r), pattern, what);
    assert.equal((((await p.api("GET", "/")).json) as { state: string }).state, "Not started", `${what}: nothing runs`);
  }
  ok(await p.api("PUT", "/snapshot/load", { snapshot_path: snap, mem_file_path: mem, resume_vm: true }));
  await untilCount(p, last + 1);
  p.proc.child.kill("SIGKILL");
});

test("a 2-vCPU VM restores (the second vCPU still waiting for its startup IPI)", { skip }, async () => {
  const { vmm, snap, mem, last } = await bootAndSnapshot("two-vcpus", 1, { vcpu_count: 2 });
  vmm.proc.child.kill("SIGKILL");
  const restored = await startApi();
  ok(await restored.api("PUT", "/snapshot/load", { snapshot_path: snap, mem_file_path: mem, resume_vm: true }));
  await untilCount(restored, last + 2);
  restored.proc.child.kill("SIGKILL");
});

test("drives are reopened by path: a missing or resized image is refused with a 400, the right one loads", { skip }, async () => {
  const image = path.join(workDir, "data.img");
  writeFileSync(image, Buffer.alloc(64 * 1024));
  const vmm = await startApi();
  ok(await vmm.api("PUT", "/boot-source", { kernel_image_path: kernel }));
  ok(await vmm.api("PUT", "/machine-config", { vcpu_count: 1, mem_size_mib: MEM_MIB }));
  ok(await vmm.api("PUT", "/drives/data", { drive_id: "data", path_on_host: image, is_root_device: false, is_read_only: false }));
  ok(await vmm.api("PUT", "/actions", { action_type: "InstanceStart" }));
  await untilCount(vmm, 1);
  ok(await vmm.api("PATCH", "/vm", { state: "Paused" }));
  const snap = path.join(workDir, "drive.snap");
  const mem = path.join(workDir, "drive.mem");
  ok(await vmm.api("PUT", "/snapshot/create", { snapshot_path: snap, mem_file_path: mem }));
  vmm.proc.child.kill("SIGKILL");

  const p = await startApi();
  const load = () => p.api("PUT", "/snapshot/load", { snapshot_path: snap, mem_file_path: mem, resume_vm: true });
  rmSync(image);
  let r = await load();
  assert.equal(r.status, 400, r.text);
  assert.match(faultOf(r), /data\.img.*ENOENT|ENOENT.*data\.img/);
  writeFileSync(image, Buffer.alloc(128 * 1024));
  r = await load();
  assert.equal(r.status, 400, r.text);
  assert.match(faultOf(r), /virtio-block data: its configuration differs from the snapshot's/);
  truncateSync(image, 64 * 1024);
  ok(await load());
  await untilCount(p, 2);
  p.proc.child.kill("SIGKILL");
});

test("the library: loadSnapshot() reads and checks the state file once, and start() restores what it read", { skip }, async () => {
  const vm = createVm({ "boot-source": { kernel_image_path: kernel }, "machine-config": { vcpu_count: 1, mem_size_mib: MEM_MIB } });
  let out = "";
  vm.console.setEncoding("latin1").on("data", (d: string) => (out += d));
  const until = async (what: () => boolean) => {
    for (const deadline = Date.now() + 30_000; !what(); await new Promise((r) => setTimeout(r, 20))) {
      if (Date.now() > deadline) throw new Error(`timed out; console:\n${out}`);
    }
  };
  await vm.start();
  await until(() => counts(out).length >= 2);
  await vm.pause();
  const snap = path.join(workDir, "lib.snap");
  const mem = path.join(workDir, "lib.mem");
  await vm.snapshot({ snapshotPath: snap, memFilePath: mem });
  await new Promise((r) => setTimeout(r, 200));
  const last = Math.max(...counts(out));
  await vm.stop();

  const restored = loadSnapshot({ snapshotPath: snap, memFilePath: mem });
  assert.equal(restored.config["machine-config"].mem_size_mib, MEM_MIB);
  // Gone after loadSnapshot(): start() must not need it again (it restores the state loadSnapshot checked).
  rmSync(snap);
  out = "";
  restored.console.setEncoding("latin1").on("data", (d: string) => (out += d));
  await restored.start();
  try {
    await until(() => counts(out).length >= 1);
    assert.ok(counts(out)[0] > last, `the restored guest goes on from ${last}: ${out.slice(0, 200)}`);
  } finally {
    await restored.stop();
  }
});

test("PUT /snapshot/load vsock_override: the restored vsock device listens on the new socket; a snapshot without vsock refuses it", { skip }, async () => {
  const vmm = await startApi();
  const oldSock = path.join(workDir, "api-old-v.sock");
  const newSock = path.join(workDir, "api-new-v.sock");
  ok(await vmm.api("PUT", "/boot-source", { kernel_image_path: kernel }));
  ok(await vmm.api("PUT", "/machine-config", { vcpu_count: 1, mem_size_mib: MEM_MIB }));
  ok(await vmm.api("PUT", "/vsock", { guest_cid: 3, uds_path: oldSock }));
  ok(await vmm.api("PUT", "/actions", { action_type: "InstanceStart" }));
  await untilCount(vmm, 1);
  ok(await vmm.api("PATCH", "/vm", { state: "Paused" }));
  const snap = path.join(workDir, "api-vsock.snap");
  const mem = path.join(workDir, "api-vsock.mem");
  ok(await vmm.api("PUT", "/snapshot/create", { snapshot_path: snap, mem_file_path: mem }));
  vmm.proc.child.kill("SIGKILL");

  const restored = await startApi();
  ok(await restored.api("PUT", "/snapshot/load", { snapshot_path: snap, mem_backend: { backend_type: "File", backend_path: mem }, vsock_override: { uds_path: newSock }, resume_vm: true }));
  assert.equal(((await restored.api("GET", "/vm/config")).json as { vsock: { uds_path: string } }).vsock.uds_path, newSock);
  assert.ok(statSync(newSock).isSocket());
  restored.proc.child.kill("SIGKILL");

  // The CLI's equivalent, and its --huge-pages: 2M cannot be mapped from the memory file.
  const cliSock = path.join(workDir, "cli-v.sock");
  const hugeRefused = await runPetasan(["restore", "--snapshot", snap, "--mem", mem, "--serial", "none", "--huge-pages", "2M"], PROCESS_TIMEOUT_MS);
  assert.equal(hugeRefused.code, 1);
  assert.match(hugeRefused.stderr, /petasan: loadSnapshot: cannot restore guest memory on 2M huge pages .*needs a Uffd memory backend/);
  const cli = startPetasan(["restore", "--snapshot", snap, "--mem", mem, "--serial", "stdio", "--vsock-override", cliSock, "--huge-pages", "None"], PROCESS_TIMEOUT_MS);
  children.push(cli);
  await cli.waitFor(/counter: [0-9a-f]{16}\n/);
  assert.ok(statSync(cliSock).isSocket());
  cli.child.kill("SIGKILL");

  const plain = await bootAndSnapshot("no-vsock", 1);
  plain.vmm.proc.child.kill("SIGKILL");
  const refused = await startApi();
  const r = await refused.api("PUT", "/snapshot/load", { snapshot_path: plain.snap, mem_file_path: plain.mem, vsock_override: { uds_path: newSock } });
  assert.equal(r.status, 400);
  assert.match(faultOf(r), /vsock_override: the snapshot has no vsock device/);
  refused.proc.child.kill("SIGKILL");
});

test("the library: loadSnapshot() refuses the options a restored VM cannot honour (host placement)", () => {
  const source = { snapshotPath: path.join(workDir, "none.snap"), memFilePath: path.join(workDir, "none.mem") };
  assert.throws(() => loadSnapshot(source, { host: { ksm: true } }), { name: "VmConfigError", message: /host option .* not supported for a restored VM/ });
});

/** Runs `vm` (fresh or restored) with its console collected; returns a waiter for counter lines. */
function watchCounter(vm: ReturnType<typeof createVm>): { out: () => string; until: (n: number) => Promise<void> } {
  let out = "";
  vm.console.setEncoding("latin1").on("data", (d: string) => (out += d));
  return {
    out: () => out,
    until: async (n) => {
      for (const deadline = Date.now() + 30_000; counts(out).length < n; await new Promise((r) => setTimeout(r, 20))) {
        if (Date.now() > deadline) throw new Error(`timed out; console:\n${out}`);
      }
    },
  };
}

test("a VM with vsock, a balloon and devices written by the user is snapshotted and restored with their states", { skip }, async () => {
  // A bus device whose state is a number it logs when restored; and one without saveState.
  const saving = path.join(workDir, "saving-device.mjs");
  writeFileSync(saving, `export default (ctx) => {
    let value = ctx.options.start;
    return {
      read(offset, data) { data.fill(value & 0xff); },
      write() { value++; },
      saveState: () => ({ value: value + 1000 }),
      restoreState(saved) { value = saved.value; ctx.log("Warning", "restored value=" + value); },
    };
  };\n`);
  const plain = path.join(workDir, "plain-device.mjs");
  writeFileSync(plain, "export default () => ({ read(o, d) { d.fill(0); }, write() {} });\n");
  const savingDevice = { name: "saving", module: saving, bus: "pio" as const, base: 0x700, length: 4, options: { start: 7 } };
  // A virtio device (its driver never starts here): its state goes beside its transport's.
  const virtioModule = path.join(workDir, "saving-virtio.mjs");
  writeFileSync(virtioModule, `export default (ctx) => ({
    deviceType: 42, features: 1n << 32n, queueMaxSizes: [16],
    readConfig(offset, data) { data.fill(0); }, writeConfig() {}, activate() {}, processQueue() {}, reset() {},
    saveState: () => ({ tag: "kept" }),
    restoreState(saved) { ctx.log("Warning", "virtio restored " + saved.tag); },
  });\n`);
  const savingVirtio = { name: "vsaving", module: virtioModule, bus: "virtio" as const, queues: 1 };
  // A vsock socket file stays after its VM (as Firecracker's): each VM here gets its own path.
  const config = (sock: string) => ({
    "boot-source": { kernel_image_path: kernel }, "machine-config": { vcpu_count: 1, mem_size_mib: MEM_MIB },
    vsock: { guest_cid: 3, uds_path: path.join(workDir, sock) }, balloon: { amount_mib: 4, deflate_on_oom: false, stats_polling_interval_s: 1 },
  });
  const newSock = path.join(workDir, "new-v.sock");

  const refused = createVm(config("refused-v.sock"), { devices: [savingDevice, { name: "plain", module: plain, bus: "pio", base: 0x710, length: 4 }] });
  await refused.start();
  try {
    await refused.pause();
    await assert.rejects(refused.snapshot({ snapshotPath: path.join(workDir, "r.snap"), memFilePath: path.join(workDir, "r.mem") }),
      /the device written by the user "plain" has no saveState\(\): a VM with it cannot be snapshotted/);
    refused.resume();
  } finally {
    await refused.stop();
  }

  const vm = createVm(config("old-v.sock"), { devices: [savingDevice, savingVirtio] });
  const console1 = watchCounter(vm);
  await vm.start();
  await console1.until(2);
  // PATCHed after boot: the restored balloon has this interval, not the configuration's.
  await vm.setBalloonStatsInterval(5);
  await vm.pause();
  const snap = path.join(workDir, "dev.snap");
  const mem = path.join(workDir, "dev.mem");
  await vm.snapshot({ snapshotPath: snap, memFilePath: mem });
  await new Promise((r) => setTimeout(r, 200));
  const last = Math.max(...counts(console1.out()));
  await vm.stop();

  // The user's devices are code, not in the snapshot: without them the restore is refused, naming the difference.
  const without = loadSnapshot({ snapshotPath: snap, memFilePath: mem, vsockUdsPath: path.join(workDir, "without-v.sock") }, { console: "none" });
  await assert.rejects(without.start(), /the snapshot holds virtio devices vsock "vsock", balloon "balloon", user "vsaving"; the restored VM has vsock "vsock", balloon "balloon" \(devices written by the user must be given again/);
  const busMissing = loadSnapshot({ snapshotPath: snap, memFilePath: mem, vsockUdsPath: path.join(workDir, "bus-missing-v.sock") }, { console: "none", devices: [savingVirtio] });
  await assert.rejects(busMissing.start(), /bus devices written by the user are "saving" \(pio 0x700\+0x4\); the restored VM is given none/);

  const logs: string[] = [];
  const restored = loadSnapshot({ snapshotPath: snap, memFilePath: mem, vsockUdsPath: newSock }, { devices: [savingDevice, savingVirtio] });
  restored.on("log", (line) => logs.push(line));
  assert.equal(restored.config.vsock?.uds_path, newSock);
  const console2 = watchCounter(restored);
  await restored.start();
  try {
    await console2.until(1);
    assert.ok(counts(console2.out())[0] > last, "the restored guest goes on");
    assert.ok(logs.some((l) => l.includes("restored value=1007")), `the device got its saved state: ${logs.join("\n")}`);
    assert.ok(logs.some((l) => l.includes("virtio restored kept")), `the virtio device got its saved state: ${logs.join("\n")}`);
    assert.deepEqual(await restored.balloonState(), { amount_mib: 4, stats_polling_interval_s: 5 });
    assert.ok(statSync(newSock).isSocket(), "the vsock device listens on the overriding socket");
  } finally {
    await restored.stop();
  }
});
