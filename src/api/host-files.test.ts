import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { driveSchema } from "../config/index.js";
import type { Action, ActionResult } from "./actions.js";
import { Controller } from "./controller.js";
import { FakeVmmBackend } from "./fake-vmm-backend.js";
import { ioErrorText } from "./host-files.js";

const dir = mkdtempSync(join(tmpdir(), "petasan-host-files-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const kernel = join(dir, "vmlinux");
writeFileSync(kernel, "not really a kernel");
const imageDir = join(dir, "a-directory");
mkdirSync(imageDir);
const missing = join(dir, "missing");

/** A Controller on the real file system, as petasan runs it. */
function run(actions: Action[]): Promise<ActionResult[]> {
  const controller = new Controller({ backend: new FakeVmmBackend(), vmmVersion: "0" });
  return Promise.all(actions.map((action) => controller.handle(action)));
}

function fault(result: ActionResult | undefined): string {
  assert.ok(result && !result.ok, "expected a failure");
  return result.ok ? "" : result.error.faultMessage;
}

test("PUT /boot-source opens the kernel and the initrd: a missing one is Firecracker's 400 at once", async () => {
  const [noKernel, noInitrd, ok] = await run([
    { kind: "putBootSource", bootSource: { kernel_image_path: missing } },
    { kind: "putBootSource", bootSource: { kernel_image_path: kernel, initrd_path: missing } },
    { kind: "putBootSource", bootSource: { kernel_image_path: kernel } },
  ]);
  assert.equal(fault(noKernel), "Boot source error: The kernel file cannot be opened: No such file or directory (os error 2)");
  assert.equal(
    fault(noInitrd),
    "Boot source error: The initrd file cannot be opened due to invalid path or invalid permissions. No such file or directory (os error 2)",
  );
  assert.deepEqual(ok, { ok: true });
});

test("PUT /drives opens the image, read-only when is_read_only", async () => {
  const drive = (path_on_host: string, is_read_only: boolean) =>
    ({ kind: "putDrive", drive: driveSchema.parse({ drive_id: "d", path_on_host, is_root_device: false, is_read_only }) }) as const;
  const [absent, readWrite, readOnly] = await run([drive(missing, false), drive(imageDir, false), drive(imageDir, true)]);
  assert.equal(
    fault(absent),
    `Drive config error: Unable to create the virtio block device: Virtio backend error: Error manipulating the backing file: No such file or directory (os error 2) ${missing}`,
  );
  // A directory opens for reading only, so the read-write open fails and the read-only one does not.
  assert.match(fault(readWrite), /Error manipulating the backing file: Is a directory \(os error 21\) /);
  assert.deepEqual(readOnly, { ok: true });
});

test("PUT /logger and PUT /metrics create their file at the PUT, and fail there when they cannot", async () => {
  const logPath = join(dir, "fc.log");
  const metricsPath = join(dir, "fc.metrics");
  const [badLog, log, badMetrics, metrics, again] = await run([
    { kind: "putLogger", logger: { log_path: join(missing, "log") } },
    { kind: "putLogger", logger: { log_path: logPath } },
    { kind: "putMetrics", metrics: { metrics_path: join(missing, "m"), emit_id: false } },
    { kind: "putMetrics", metrics: { metrics_path: metricsPath, emit_id: false } },
    { kind: "putMetrics", metrics: { metrics_path: metricsPath, emit_id: false } },
  ]);
  assert.equal(fault(badLog), "Logger error: Failed to open target file: No such file or directory (os error 2)");
  assert.deepEqual(log, { ok: true });
  assert.equal(existsSync(logPath), true);
  assert.equal(fault(badMetrics), "Metrics error: Cannot initialize the metrics system due to bad user input: No such file or directory (os error 2)");
  assert.deepEqual(metrics, { ok: true });
  assert.equal(existsSync(metricsPath), true);
  assert.equal(fault(again), "Metrics error: Cannot initialize the metrics system due to bad user input: Reinitialization of metrics not allowed.");
});

test("fs errors read as Rust's io::Error", () => {
  assert.equal(ioErrorText(Object.assign(new Error("EACCES: permission denied, open '/x'"), { code: "EACCES", errno: -13 })), "Permission denied (os error 13)");
  assert.equal(ioErrorText(Object.assign(new Error("EXDEV: cross-device link not permitted, open '/x'"), { code: "EXDEV", errno: -18 })), "cross-device link not permitted (os error 18)");
});

test("a second root drive is refused before its file is opened, as Firecracker's BlockBuilder::insert", async () => {
  const root = (drive_id: string, path_on_host: string) =>
    ({ kind: "putDrive", drive: driveSchema.parse({ drive_id, path_on_host, is_root_device: true, is_read_only: true }) }) as const;
  const [first, second] = await run([root("a", kernel), root("b", missing)]);
  assert.deepEqual(first, { ok: true });
  assert.equal(fault(second), 'Drive config error: A root block device already exists! (drive "a")');
});
