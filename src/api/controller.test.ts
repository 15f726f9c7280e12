import assert from "node:assert/strict";
import { test } from "node:test";
import { driveSchema, VmResources } from "../config/index.js";
import type { Action, ActionResult } from "./actions.js";
import { Controller } from "./controller.js";
import { NOT_SUPPORTED_POST_BOOT, NOT_SUPPORTED_PRE_BOOT, VM_STOPPED } from "./errors.js";
import { FakeHostFiles } from "./fake-host-files.js";
import { FakeVmmBackend } from "./fake-vmm-backend.js";
import type { VmmBackend } from "./vmm-backend.js";

function setup(backend: VmmBackend = new FakeVmmBackend()) {
  return new Controller({ backend, vmmVersion: "0.1.0", hostFiles: new FakeHostFiles() });
}

function fault(result: ActionResult): string {
  assert.equal(result.ok, false);
  return result.ok ? "" : result.error.faultMessage;
}

const bootSource: Action = { kind: "putBootSource", bootSource: { kernel_image_path: "/k" } };

test("boots with the assembled config and moves through the phases", async () => {
  const backend = new FakeVmmBackend();
  const controller = setup(backend);
  assert.equal(controller.phase, "Configuring");
  assert.deepEqual(await controller.handle(bootSource), { ok: true });
  assert.deepEqual(await controller.handle({ kind: "instanceStart" }), { ok: true });
  assert.equal(controller.phase, "Running");
  assert.equal(backend.calls[0].method, "start");
  await controller.handle({ kind: "setVmState", state: "Paused" });
  assert.equal(controller.phase, "Paused");
  await controller.handle({ kind: "setVmState", state: "Paused" });
  await controller.handle({ kind: "setVmState", state: "Resumed" });
  assert.equal(controller.phase, "Running");
  assert.deepEqual(backend.calls.map((c) => c.method), ["start", "pause", "resume"]);
});

test("start without a kernel is refused as Firecracker does", async () => {
  assert.equal(fault(await setup().handle({ kind: "instanceStart" })), "Start microvm error: Cannot start microvm without kernel configuration.");
});

test("a failed start names the cause and leaves the VM configurable", async () => {
  const backend = new FakeVmmBackend();
  backend.failNext.set("start", new Error("loading kernel", { cause: new Error("/k: not an ELF or bzImage") }));
  const controller = setup(backend);
  await controller.handle(bootSource);
  assert.equal(fault(await controller.handle({ kind: "instanceStart" })), "Start microvm error: loading kernel: /k: not an ELF or bzImage");
  assert.equal(controller.phase, "Configuring");
  assert.deepEqual(await controller.handle({ kind: "instanceStart" }), { ok: true });
});

test("pre-boot and post-boot rules", async () => {
  const controller = setup();
  assert.equal(fault(await controller.handle({ kind: "setVmState", state: "Paused" })), NOT_SUPPORTED_PRE_BOOT);
  assert.equal(fault(await controller.handle({ kind: "flushMetrics" })), NOT_SUPPORTED_PRE_BOOT);
  await controller.handle(bootSource);
  await controller.handle({ kind: "instanceStart" });
  assert.equal(fault(await controller.handle(bootSource)), NOT_SUPPORTED_POST_BOOT);
  assert.equal(fault(await controller.handle({ kind: "instanceStart" })), NOT_SUPPORTED_POST_BOOT);
  controller.vmStopped();
  assert.equal(fault(await controller.handle({ kind: "sendCtrlAltDel" })), VM_STOPPED);
  const info = await controller.handle({ kind: "getInstanceInfo" });
  assert.deepEqual(info, { ok: true, data: { app_name: "petasan", id: "anonymous-instance", state: "Stopped", vmm_version: "0.1.0" } });
});

test("a drive swap reaches the VMM before it is recorded", async () => {
  const backend = new FakeVmmBackend();
  const resources = VmResources.fromConfig({
    "boot-source": { kernel_image_path: "/k" },
    "machine-config": { vcpu_count: 1, mem_size_mib: 128, smt: false, track_dirty_pages: false, huge_pages: "None" },
    drives: [driveSchema.parse({ drive_id: "scratch", path_on_host: "/a", is_root_device: false })],
    "network-interfaces": [],
  });
  const controller = new Controller({ backend, vmmVersion: "0.1.0", resources, hostFiles: new FakeHostFiles() });
  await controller.handle({ kind: "instanceStart" });
  backend.failNext.set("updateDrivePath", new Error("open /b: ENOENT"));
  const swap: Action = { kind: "patchDrive", update: { drive_id: "scratch", path_on_host: "/b" } };
  assert.equal(fault(await controller.handle(swap)), "Drive config error: Unable to patch the block device: open /b: ENOENT. Please verify the request arguments.");
  assert.deepEqual(await controller.handle(swap), { ok: true });
  const config = await controller.handle({ kind: "getVmConfig" });
  assert.equal(config.ok && "drives" in config.data! ? config.data.drives[0].path_on_host : "", "/b");
  assert.match(fault(await controller.handle({ kind: "patchDrive", update: { drive_id: "nope", path_on_host: "/c" } })), /no drive "nope" is configured/);
});

test("PATCH rate limiters reach the running drive and network interface before they are recorded", async () => {
  const backend = new FakeVmmBackend();
  const resources = VmResources.fromConfig({
    "boot-source": { kernel_image_path: "/k" },
    "machine-config": { vcpu_count: 1, mem_size_mib: 128, smt: false, track_dirty_pages: false, huge_pages: "None" },
    drives: [driveSchema.parse({ drive_id: "scratch", path_on_host: "/a", is_root_device: false })],
    "network-interfaces": [{ iface_id: "eth0", host_dev_name: "tap0" }],
  });
  const controller = new Controller({ backend, vmmVersion: "0.1.0", resources });
  await controller.handle({ kind: "instanceStart" });
  const ops = { ops: { size: 10, refill_time: 1000 } };
  assert.deepEqual(await controller.handle({ kind: "patchDrive", update: { drive_id: "scratch", rate_limiter: ops } }), { ok: true });
  backend.failNext.set("updateRateLimiters", new Error("no network interface"));
  assert.match(fault(await controller.handle({ kind: "patchNetworkInterface", update: { iface_id: "eth0", tx_rate_limiter: ops } })), /Unable to patch the network interface: no network interface/);
  assert.deepEqual(await controller.handle({ kind: "patchNetworkInterface", update: { iface_id: "eth0", rx_rate_limiter: ops } }), { ok: true });
  assert.deepEqual(backend.calls.slice(1), [
    { method: "updateRateLimiters", update: { device: "drive", id: "scratch", rateLimiter: ops } },
    { method: "updateRateLimiters", update: { device: "network-interface", id: "eth0", rx: undefined, tx: ops } },
    { method: "updateRateLimiters", update: { device: "network-interface", id: "eth0", rx: ops, tx: undefined } },
  ]);
  const config = await controller.handle({ kind: "getVmConfig" });
  const ifaces = config.ok && "network-interfaces" in config.data! ? config.data["network-interfaces"] : [];
  assert.deepEqual([ifaces[0].rx_rate_limiter, ifaces[0].tx_rate_limiter], [ops, undefined], "the failed PATCH recorded nothing");
});

test("state-changing actions run one at a time, in order", async () => {
  let releaseStart = () => {};
  const backend = new FakeVmmBackend();
  backend.holdUntil.set("start", new Promise<void>((resolve) => (releaseStart = resolve)));
  const controller = setup(backend);
  await controller.handle(bootSource);
  const start = controller.handle({ kind: "instanceStart" });
  const lateConfig = controller.handle(bootSource);
  // Queries are not queued behind the slow start.
  const info = await controller.handle({ kind: "getInstanceInfo" });
  assert.equal(info.ok && "state" in info.data! ? info.data.state : "", "Not started");
  releaseStart();
  assert.deepEqual(await start, { ok: true });
  assert.equal(fault(await lateConfig), NOT_SUPPORTED_POST_BOOT);
});

test("configuration conflicts carry Firecracker's prefixes", async () => {
  const controller = setup();
  const root = (drive_id: string): Action => ({ kind: "putDrive", drive: driveSchema.parse({ drive_id, path_on_host: "/d", is_root_device: true }) });
  await controller.handle(root("a"));
  assert.equal(fault(await controller.handle(root("b"))), 'Drive config error: A root block device already exists! (drive "a")');
  assert.equal(
    fault(await controller.handle({ kind: "patchMachineConfig", update: { vcpu_count: 3, smt: true } })),
    "Machine config error: The number of vCPUs must be greater than 0, less than 32 and must be 1 or an even number if SMT is enabled.",
  );
});

test("balloon: PUT before boot (size rule), GET any time, PATCH and statistics after boot through the VMM", async () => {
  const backend = new FakeVmmBackend();
  const controller = setup(backend);
  assert.equal(fault(await controller.handle({ kind: "getBalloon" })), "Balloon config error: No balloon device found.");
  const balloon = { amount_mib: 512, deflate_on_oom: true, stats_polling_interval_s: 1, free_page_hinting: false, free_page_reporting: true };
  assert.equal(fault(await controller.handle({ kind: "putBalloon", balloon })), "Balloon config error: Amount of pages requested is too large.");
  assert.deepEqual(await controller.handle({ kind: "putBalloon", balloon: { ...balloon, amount_mib: 0 } }), { ok: true });
  assert.deepEqual(await controller.handle({ kind: "getBalloon" }), { ok: true, data: { ...balloon, amount_mib: 0 } });
  assert.equal(fault(await controller.handle({ kind: "patchBalloon", update: { amount_mib: 64 } })), NOT_SUPPORTED_PRE_BOOT);
  assert.equal(fault(await controller.handle({ kind: "getBalloonStats" })), NOT_SUPPORTED_PRE_BOOT);

  await controller.handle(bootSource);
  await controller.handle({ kind: "instanceStart" });
  assert.equal(fault(await controller.handle({ kind: "putBalloon", balloon })), NOT_SUPPORTED_POST_BOOT);
  assert.deepEqual(await controller.handle({ kind: "patchBalloon", update: { amount_mib: 64 } }), { ok: true });
  assert.deepEqual(await controller.handle({ kind: "patchBalloonStats", update: { stats_polling_interval_s: 5 } }), { ok: true });
  const got = await controller.handle({ kind: "getBalloon" });
  assert.deepEqual(got.ok && got.data, { ...balloon, amount_mib: 64, stats_polling_interval_s: 5 });
  backend.balloonStats = { target_pages: 64 * 256, actual_pages: 0, target_mib: 64, actual_mib: 0, free_memory: 1 };
  assert.deepEqual(await controller.handle({ kind: "getBalloonStats" }), { ok: true, data: backend.balloonStats });
  backend.failNext.set("updateBalloon", new Error("Device not activated yet."));
  assert.equal(fault(await controller.handle({ kind: "patchBalloon", update: { amount_mib: 1 } })), "Balloon update error: Device not activated yet.");
  assert.deepEqual(backend.calls.slice(1).map((c) => c.method), ["updateBalloon", "updateBalloonStatsInterval", "balloonStatistics", "updateBalloon"]);
  // A failed PATCH changes nothing recorded.
  const after = await controller.handle({ kind: "getBalloon" });
  assert.equal(after.ok && (after.data as { amount_mib: number }).amount_mib, 64);
});

test("balloon requests after boot without a balloon are refused before reaching the VMM", async () => {
  const backend = new FakeVmmBackend();
  const controller = setup(backend);
  await controller.handle(bootSource);
  await controller.handle({ kind: "instanceStart" });
  assert.equal(fault(await controller.handle({ kind: "patchBalloon", update: { amount_mib: 1 } })), "Balloon update error: No balloon device found.");
  assert.equal(fault(await controller.handle({ kind: "getBalloonStats" })), "Balloon update error: No balloon device found.");
  assert.deepEqual(backend.calls.map((c) => c.method), ["start"]);
});
