import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ConfigFileError, loadConfigFile, MAX_CONFIG_FILE_BYTES } from "./load-config-file.js";

let dir = "";
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "petasan-config-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fileWith(name: string, text: string | Uint8Array): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

/** The example from Firecracker's docs/getting-started.md, in its config-file form. */
const gettingStarted = {
  "boot-source": { kernel_image_path: "vmlinux", boot_args: "console=ttyS0 reboot=k panic=1" },
  drives: [{ drive_id: "rootfs", path_on_host: "rootfs.ext4", is_root_device: true, is_read_only: false }],
  "machine-config": { vcpu_count: 2, mem_size_mib: 1024 },
  "network-interfaces": [{ iface_id: "net1", guest_mac: "06:00:AC:10:00:02", host_dev_name: "tap0" }],
};

test("loads a Firecracker config file", async () => {
  const config = await loadConfigFile(await fileWith("ok.json", JSON.stringify(gettingStarted)));
  assert.equal(config["boot-source"].kernel_image_path, "vmlinux");
  assert.equal(config["machine-config"].cpu_template, undefined, "no template: the field is left out, as Firecracker does");
  assert.equal(config.drives[0].cache_type, "Unsafe");
  assert.equal(config["network-interfaces"][0].guest_mac, "06:00:ac:10:00:02");
});

test("a missing file names the path", async () => {
  const path = join(dir, "absent.json");
  await assert.rejects(loadConfigFile(path), (error: Error) => {
    assert.ok(error instanceof ConfigFileError);
    assert.match(error.message, new RegExp(`^config file ${path}: cannot open: ENOENT`));
    return true;
  });
});

test("bad JSON gives the line and column", async () => {
  const path = await fileWith("bad.json", '{\n  "drives": [,]\n}');
  await assert.rejects(loadConfigFile(path), /config file .*bad\.json: invalid JSON: .* at line 2, column 14$/);
});

test("schema errors name the field", async () => {
  const config = { ...gettingStarted, drives: [{ drive_id: "rootfs", is_root_device: true }] };
  await assert.rejects(loadConfigFile(await fileWith("schema.json", JSON.stringify(config))), /: drives\[0\]\.path_on_host: missing required field$/);
  await assert.rejects(loadConfigFile(await fileWith("noboot.json", "{}")), /: boot-source: missing required field$/);
});

test("an oversized or non-UTF-8 file is refused", async () => {
  const big = await fileWith("big.json", " ".repeat(MAX_CONFIG_FILE_BYTES + 1));
  await assert.rejects(loadConfigFile(big), /larger than 1048576 bytes/);
  await assert.rejects(loadConfigFile(await fileWith("latin1.json", Uint8Array.of(0x7b, 0xff, 0x7d))), /is not valid UTF-8/);
});
