import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { AllowedPaths, PathNotAllowedError } from "./allowed-paths.js";
import type { VmConfig } from "../lib/index.js";

function tree(): { dir: string; allowed: string; outside: string } {
  const dir = mkdtempSync(path.join(tmpdir(), "petasan-allowed-"));
  const allowed = path.join(dir, "allowed");
  const outside = path.join(dir, "outside");
  mkdirSync(allowed);
  mkdirSync(outside);
  writeFileSync(path.join(allowed, "kernel"), "k");
  writeFileSync(path.join(outside, "secret"), "s");
  symlinkSync(path.join(outside, "secret"), path.join(allowed, "link-out"));
  symlinkSync(outside, path.join(allowed, "dir-out"));
  return { dir, allowed, outside };
}

test("paths under an allowed folder pass; '..', symlinks out and relative paths do not", () => {
  const { dir, allowed, outside } = tree();
  try {
    const paths = new AllowedPaths([allowed]);
    assert.equal(paths.check(path.join(allowed, "kernel"), "k"), path.join(paths.roots[0], "kernel"));
    // A file still to be created (a log) in an allowed folder.
    assert.ok(paths.check(path.join(allowed, "new", "vm.log"), "log").endsWith("/new/vm.log"));
    for (const bad of [path.join(allowed, "..", "outside", "secret"), path.join(allowed, "link-out"), path.join(allowed, "dir-out", "secret"), path.join(allowed, "dir-out", "new.log"), path.join(outside, "secret"), "kernel", `${allowed}-sibling/x`]) {
      assert.throws(() => paths.check(bad, "boot-source.kernel_image_path"), PathNotAllowedError, bad);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("no --allow: every path is refused, with a message saying how to allow one", () => {
  assert.throws(() => new AllowedPaths([]).check("/boot/vmlinuz", "boot-source.kernel_image_path"), /boot-source\.kernel_image_path: \/boot\/vmlinuz is outside .*--allow DIR/);
});

test("an --allow folder that does not exist is an error at start", () => {
  assert.throws(() => new AllowedPaths(["/nonexistent/folder"]), /--allow \/nonexistent\/folder: ENOENT/);
});

test("every path a config names is checked: kernel, initrd, drives, log, metrics, vsock", () => {
  const { dir, allowed, outside } = tree();
  try {
    const paths = new AllowedPaths([allowed]);
    const base: VmConfig = {
      "boot-source": { kernel_image_path: path.join(allowed, "kernel") },
      "machine-config": { vcpu_count: 1, mem_size_mib: 64, smt: false, track_dirty_pages: false, huge_pages: "None" },
      drives: [],
      "network-interfaces": [],
    } as unknown as VmConfig;
    paths.checkConfig(base);
    const bad = path.join(outside, "x");
    const variants: [string, VmConfig][] = [
      ["initrd_path", { ...base, "boot-source": { ...base["boot-source"], initrd_path: bad } }],
      ["drives[rootfs]", { ...base, drives: [{ drive_id: "rootfs", path_on_host: bad, is_root_device: true, is_read_only: false }] } as unknown as VmConfig],
      ["logger.log_path", { ...base, logger: { log_path: bad } } as unknown as VmConfig],
      ["metrics.metrics_path", { ...base, metrics: { metrics_path: bad } } as unknown as VmConfig],
      ["vsock.uds_path", { ...base, vsock: { guest_cid: 3, uds_path: bad } } as unknown as VmConfig],
    ];
    for (const [field, config] of variants) assert.throws(() => paths.checkConfig(config), new RegExp(field.replace(/[[\].]/g, "\\$&")), field);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a restored VM's config: its kernel and initrd are not read, so not checked; its drives and log are", () => {
  const { dir, allowed, outside } = tree();
  try {
    const paths = new AllowedPaths([allowed]);
    const saved = {
      "boot-source": { kernel_image_path: "/boot/vmlinuz", initrd_path: path.join(outside, "initrd") },
      "machine-config": { vcpu_count: 1, mem_size_mib: 64, smt: false, track_dirty_pages: false, huge_pages: "None" },
      drives: [],
      "network-interfaces": [],
    } as unknown as VmConfig;
    assert.throws(() => paths.checkConfig(saved), /kernel_image_path/);
    paths.checkConfig(saved, { bootFiles: false });
    const withDrive = { ...saved, drives: [{ drive_id: "rootfs", path_on_host: path.join(outside, "x"), is_root_device: true, is_read_only: false }] } as unknown as VmConfig;
    assert.throws(() => paths.checkConfig(withDrive, { bootFiles: false }), /drives\[rootfs\]\.path_on_host/);
    assert.throws(() => paths.checkConfig({ ...saved, logger: { log_path: path.join(outside, "log") } } as unknown as VmConfig, { bootFiles: false }), /logger\.log_path/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
