import assert from "node:assert/strict";
import { FakeHostFiles } from "./fake-host-files.js";
import { test } from "node:test";
import { parseVmConfig } from "../config/index.js";
import type { ActionResult } from "./actions.js";
import { ActionError, NOT_SUPPORTED_PRE_BOOT } from "./errors.js";
import { Controller } from "./controller.js";
import { FakeVmmBackend } from "./fake-vmm-backend.js";
import { parseRequest } from "./routes.js";

function fault(result: ActionResult): string {
  assert.equal(result.ok, false);
  return result.ok ? "" : result.error.faultMessage;
}

function refusal(method: string, url: string, body: object): string {
  try {
    parseRequest(method, url, JSON.stringify(body));
  } catch (e) {
    assert.ok(e instanceof ActionError);
    assert.equal(e.status, 400);
    return e.faultMessage;
  }
  assert.fail("the request was accepted");
}

const LOADED = parseVmConfig({ "boot-source": { kernel_image_path: "/k" }, "machine-config": { vcpu_count: 1, mem_size_mib: 64 } });

test("PUT /snapshot/create and /snapshot/load parse as Firecracker's bodies", () => {
  assert.deepEqual(parseRequest("PUT", "/snapshot/create", JSON.stringify({ snapshot_type: "Diff", snapshot_path: "s", mem_file_path: "m" })), {
    kind: "createSnapshot", params: { snapshot_type: "Diff", snapshot_path: "s", mem_file_path: "m" },
  });
  assert.deepEqual(parseRequest("PUT", "/snapshot/load", JSON.stringify({ snapshot_path: "s", mem_backend: { backend_type: "File", backend_path: "m" }, enable_diff_snapshots: true })), {
    kind: "loadSnapshot", params: { snapshot_path: "s", mem_file_path: "m", track_dirty_pages: true, resume_vm: false, network_overrides: [] },
  });
  assert.match(refusal("PUT", "/snapshot/create", { snapshot_path: "s" }), /mem_file_path/);
  assert.match(refusal("PUT", "/snapshot/create", { snapshot_type: "Half", snapshot_path: "s", mem_file_path: "m" }), /unknown variant `Half`, expected `Full` or `Diff`/);
  assert.match(refusal("PUT", "/snapshot/load", { snapshot_path: "s" }), /either `mem_backend` or `mem_file_path` is required/);
  assert.match(refusal("PUT", "/snapshot/load", { snapshot_path: "s", mem_file_path: "m", mem_backend: { backend_type: "File", backend_path: "m" } }), /too many fields/);
  assert.match(refusal("PUT", "/snapshot/load", { snapshot_path: "s", mem_backend: { backend_type: "Uffd", backend_path: "/sock" } }), /Uffd is not supported by petasan/);
  // vsock_override and huge_pages go to the load (which refuses a 2M result: no Uffd backend).
  assert.deepEqual(parseRequest("PUT", "/snapshot/load", JSON.stringify({ snapshot_path: "s", mem_file_path: "m", vsock_override: { uds_path: "/x" }, huge_pages: "2M" })), {
    kind: "loadSnapshot", params: { snapshot_path: "s", mem_file_path: "m", track_dirty_pages: false, resume_vm: false, network_overrides: [], vsock_override: { uds_path: "/x" }, huge_pages: "2M" },
  });
  assert.match(refusal("PUT", "/snapshot/load", { snapshot_path: "s", mem_file_path: "m", vsock_override: {} }), /uds_path/);
  assert.match(refusal("PUT", "/snapshot/load", { snapshot_path: "s", mem_file_path: "m", huge_pages: "1G" }), /1G/);
  assert.match(refusal("PUT", "/snapshot/load", { snapshot_path: "s", mem_file_path: "m", clock_realtime: true }), /clock_realtime: not supported/);
  assert.match(refusal("PUT", "/snapshot/load", { snapshot_path: "s", mem_file_path: "m", network_overrides: [{ iface_id: "eth0" }] }), /host_dev_name/);
});

test("snapshot/create only on a paused microVM; load only in a fresh process", async () => {
  const backend = new FakeVmmBackend();
  const c = new Controller({ backend, vmmVersion: "0", hostFiles: new FakeHostFiles() });
  const create = { kind: "createSnapshot", params: { snapshot_path: "s", mem_file_path: "m" } } as const;
  assert.equal(fault(await c.handle(create)), NOT_SUPPORTED_PRE_BOOT);
  await c.handle({ kind: "putBootSource", bootSource: { kernel_image_path: "/k" } });
  assert.equal(fault(await c.handle({ kind: "loadSnapshot", params: { snapshot_path: "s", mem_file_path: "m", track_dirty_pages: false, resume_vm: false, network_overrides: [] } })),
    "Loading a microVM snapshot not allowed after configuring boot-specific resources.");
  await c.handle({ kind: "instanceStart" });
  assert.match(fault(await c.handle(create)), /must be paused/);
  await c.handle({ kind: "setVmState", state: "Paused" });
  assert.deepEqual(await c.handle(create), { ok: true });
  backend.failNext.set("createSnapshot", new Error("disk full"));
  assert.equal(fault(await c.handle(create)), "Create snapshot error: disk full");
});

test("a loaded snapshot is Paused, or Running with resume_vm, and GET /vm/config shows its configuration", async () => {
  for (const resume_vm of [false, true]) {
    const backend = new FakeVmmBackend();
    backend.loadedConfig = LOADED;
    const c = new Controller({ backend, vmmVersion: "0" });
    assert.deepEqual(await c.handle({ kind: "loadSnapshot", params: { snapshot_path: "s", mem_file_path: "m", track_dirty_pages: false, resume_vm, network_overrides: [] } }), { ok: true });
    assert.equal(c.phase, resume_vm ? "Running" : "Paused");
    const config = await c.handle({ kind: "getVmConfig" });
    assert.equal(config.ok && (config.data as typeof LOADED)["machine-config"].mem_size_mib, 64);
  }
  const backend = new FakeVmmBackend();
  backend.failNext.set("loadSnapshot", new Error("snapshot file s is corrupted"));
  const c = new Controller({ backend, vmmVersion: "0" });
  assert.equal(fault(await c.handle({ kind: "loadSnapshot", params: { snapshot_path: "s", mem_file_path: "m", track_dirty_pages: false, resume_vm: false, network_overrides: [] } })),
    "Load snapshot error: Failed to restore from snapshot: snapshot file s is corrupted");
  assert.equal(c.phase, "Configuring", "a failed load leaves the process fresh");
});

test("after PUT /snapshot/load the restored VM's drives and MMDS are the API's: PATCH /drives and PUT /mmds reach it", async () => {
  const backend = new FakeVmmBackend();
  backend.loadedConfig = parseVmConfig({
    "boot-source": { kernel_image_path: "/k" }, "machine-config": { vcpu_count: 1, mem_size_mib: 64 },
    drives: [{ drive_id: "rootfs", path_on_host: "/disk", is_root_device: true, is_read_only: false }],
    "network-interfaces": [{ iface_id: "eth0", host_dev_name: "tap0" }],
    "mmds-config": { version: "V2", network_interfaces: ["eth0"] },
  });
  const c = new Controller({ backend, vmmVersion: "0", hostFiles: new FakeHostFiles() });
  // Data put before the load (as --metadata does) is what the restored guest's MMDS serves: a snapshot holds none.
  assert.deepEqual(await c.handle({ kind: "putMmds", data: { a: 1 } }), { ok: true });
  const load = { snapshot_path: "s", mem_file_path: "m", track_dirty_pages: false, resume_vm: true, network_overrides: [] };
  assert.deepEqual(await c.handle({ kind: "loadSnapshot", params: load }), { ok: true });
  assert.deepEqual(backend.calls.at(-1), { method: "loadSnapshot", params: load, extras: { mmdsData: '{"a":1}' } });
  assert.deepEqual(await c.handle({ kind: "patchDrive", update: { drive_id: "rootfs", path_on_host: "/disk2" } }), { ok: true });
  assert.deepEqual(backend.calls.at(-1), { method: "updateDrivePath", driveId: "rootfs", path: "/disk2" });
  assert.deepEqual(await c.handle({ kind: "putMmds", data: { b: 2 } }), { ok: true });
  assert.deepEqual(backend.calls.at(-1), { method: "updateMmds", dataJson: '{"b":2}' });
});

test("PUT /snapshot/load hands the VMM this process's logger and metrics, not the snapshot's", async () => {
  const backend = new FakeVmmBackend();
  backend.loadedConfig = LOADED;
  const c = new Controller({ backend, vmmVersion: "0", hostFiles: new FakeHostFiles() });
  assert.deepEqual(await c.handle({ kind: "putLogger", logger: { log_path: "/new.log", level: "Debug" } }), { ok: true });
  assert.deepEqual(await c.handle({ kind: "putMetrics", metrics: { metrics_path: "/new.metrics", emit_id: false } }), { ok: true });
  const load = { snapshot_path: "s", mem_file_path: "m", track_dirty_pages: false, resume_vm: true, network_overrides: [] };
  assert.deepEqual(await c.handle({ kind: "loadSnapshot", params: load }), { ok: true });
  const call = backend.calls.at(-1);
  assert.ok(call?.method === "loadSnapshot");
  assert.equal(call.extras?.logger?.log_path, "/new.log");
  assert.equal(call.extras?.metrics?.metrics_path, "/new.metrics");
});
