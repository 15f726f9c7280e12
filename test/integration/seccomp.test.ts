/**
 * Seccomp end to end (Firecracker's tests/integration_tests/security/test_seccomp.py checks the same): a system
 * call outside a thread's list ends the VMM with exit code 148 and Firecracker's message, whichever thread makes
 * it (made by the test-only hook PETASAN_TEST_SECCOMP_VIOLATION, not by weakening a filter); --seccomp-filter
 * FILE replaces the lists (a file equal to the defaults boots, one without KVM_RUN for the vCPU stops it at its
 * first KVM_RUN); a bad file ends petasan at start in one line. jailer.test.ts checks every thread has a filter.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { buildTestGuest } from "../guests/build.js";
import { kvmSkipReason } from "./kvm-available.js";
import { runPetasan, startPetasan } from "./petasan-process.js";
import { waitForApi } from "./api-process.js";
import { requestOverSocket } from "../../src/api/api-client.js";
import { DEFAULT_SECCOMP_POLICY } from "../../src/vmm/seccomp/policy.js";

const skip = kvmSkipReason() ?? false;

async function withConfig<T>(fn: (dir: string, config: string) => Promise<T>): Promise<T> {
  const kernel = await buildTestGuest("echo");
  const dir = mkdtempSync(path.join(tmpdir(), "petasan-seccomp-"));
  const config = path.join(dir, "vm.json");
  writeFileSync(config, JSON.stringify({ "boot-source": { kernel_image_path: kernel }, "machine-config": { vcpu_count: 1, mem_size_mib: 128 } }));
  try {
    return await fn(dir, config);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const role of ["vcpu", "devices", "main"] as const) {
  const thread = { vcpu: "petasan-vcpu0", devices: "petasan-devices", main: "petasan" }[role];
  test(`a system call outside the ${role} thread's list ends the VMM with exit code 148 and Firecracker's message`, { skip }, async () => {
    await withConfig(async (_dir, config) => {
      process.env.PETASAN_TEST_SECCOMP_VIOLATION = role;
      let petasan;
      try {
        petasan = startPetasan(["--config-file", config, "--no-api"], 60_000);
      } finally {
        delete process.env.PETASAN_TEST_SECCOMP_VIOLATION;
      }
      petasan.child.stdin!.end();
      const finished = await petasan.finished;
      assert.equal(finished.code, 148, finished.stderr);
      assert.match(finished.stderr, new RegExp(`^petasan: seccomp: Shutting down VM after intercepting a bad syscall \\(135\\) on thread ${thread}; exit code 148$`, "m"));
    });
  });
}


test("--seccomp-filter FILE: the default lists as a file boot the guest; without KVM_RUN for the vCPU, its first KVM_RUN ends the VMM", { skip }, async () => {
  await withConfig(async (dir, config) => {
    const same = path.join(dir, "same.json");
    writeFileSync(same, JSON.stringify(DEFAULT_SECCOMP_POLICY));
    const vm = startPetasan(["--config-file", config, "--no-api", "--seccomp-filter", same], 60_000);
    await vm.waitFor("echo: ready\n");
    vm.child.stdin!.end("q");
    const ok = await vm.finished;
    assert.equal(ok.code, 0, ok.stderr);

    const noRun = path.join(dir, "no-kvm-run.json");
    writeFileSync(noRun, JSON.stringify({ ...DEFAULT_SECCOMP_POLICY, vcpu: { ...DEFAULT_SECCOMP_POLICY.vcpu, ioctls: ["KVM_GET_REGS"] } }));
    const stopped = await runPetasan(["--config-file", config, "--no-api", "--seccomp-filter", noRun], 60_000);
    assert.equal(stopped.code, 148, stopped.stderr);
    assert.match(stopped.stderr, /bad syscall \(16\) on thread petasan-vcpu0; exit code 148$/m);
  });
});

test("a bad --seccomp-filter file ends petasan at start with exit code 1 and one line naming it", async () => {
  await withConfig(async (dir, config) => {
    const bad = path.join(dir, "bad.json");
    writeFileSync(bad, JSON.stringify({ ...DEFAULT_SECCOMP_POLICY, vcpu: { syscalls: ["reed"] } }));
    for (const [file, message] of [[bad, /^petasan: --seccomp-filter: .*bad\.json: vcpu: "reed" is not an x86-64 system call name$/m], [path.join(dir, "missing.json"), /^petasan: --seccomp-filter: .*missing\.json: ENOENT/m]] as const) {
      const r = await runPetasan(["--config-file", config, "--no-api", "--seccomp-filter", file], 30_000);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, message);
    }
  });
});

test("with the filters on, the API's run-time requests work: drive swap, metrics flush, pause and resume, Ctrl+Alt+Del, GETs", { skip }, async () => {
  const kernel = await buildTestGuest("echo");
  const dir = mkdtempSync(path.join(tmpdir(), "petasan-seccomp-"));
  const socket = path.join(dir, "api.sock");
  const [a, b, metrics] = [path.join(dir, "a.img"), path.join(dir, "b.img"), path.join(dir, "metrics.json")];
  writeFileSync(a, Buffer.alloc(64 * 1024));
  writeFileSync(b, Buffer.alloc(128 * 1024));
  const petasan = startPetasan(["--api-sock", socket], 60_000);
  try {
    await waitForApi(socket, petasan);
    const api = async (method: string, url: string, body?: object) => {
      const r = await requestOverSocket(socket, method, url, body);
      assert.ok(r.status < 300, `${method} ${url}: ${r.status} ${r.text}`);
      return r;
    };
    await api("PUT", "/boot-source", { kernel_image_path: kernel });
    await api("PUT", "/drives/scratch", { drive_id: "scratch", path_on_host: a, is_root_device: false, is_read_only: false });
    await api("PUT", "/metrics", { metrics_path: metrics });
    await api("PUT", "/actions", { action_type: "InstanceStart" });
    await petasan.waitFor("echo: ready\n");
    await api("PATCH", "/drives/scratch", { drive_id: "scratch", path_on_host: b });
    await api("PUT", "/actions", { action_type: "FlushMetrics" });
    await api("PATCH", "/vm", { state: "Paused" });
    await api("PATCH", "/vm", { state: "Resumed" });
    await api("PUT", "/actions", { action_type: "SendCtrlAltDel" });
    await api("GET", "/vm/config");
    await api("GET", "/machine-config");
    assert.equal(((await api("GET", "/")).json as { state: string }).state, "Running");
    petasan.child.stdin!.write("q");
    const finished = await petasan.finished;
    assert.equal(finished.code, 0, finished.stderr);
  } finally {
    petasan.child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
});

test("VMs of one process share its device thread: a second VM opens a drive, rng, vsock and a tap under the thread's default filter; a VM without filters gets its own thread", { skip }, async () => {
  const kernel = await buildTestGuest("echo");
  const dir = mkdtempSync(path.join(tmpdir(), "petasan-seccomp-"));
  try {
    const script = fileURLToPath(new URL("./seccomp-shared-devices.js", import.meta.url));
    // Its own network namespace, where the tap is made.
    const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile("unshare", ["-n", process.execPath, script, kernel, dir], { timeout: 60_000 }, (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === "number" ? error.code : null) : 0, stdout, stderr });
      });
    });
    const explain = `exit ${run.code}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
    assert.equal(run.code, 0, explain);
    assert.equal(run.stdout, [
      "a: 1 device thread(s)", "b: 1 device thread(s)", "c: 2 device thread(s)",
      "b: stopped, state Running/Stopped/Running", "a: stopped, state Stopped/Stopped/Running", "c: stopped, state Stopped/Stopped/Stopped", "",
    ].join("\n"), explain);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
