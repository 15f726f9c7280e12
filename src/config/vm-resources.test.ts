import assert from "node:assert/strict";
import { test } from "node:test";
import { driveSchema, type DriveConfig } from "./drive.js";
import { DEFAULT_MACHINE_CONFIG, machineConfigSchema } from "./machine-config.js";
import { networkInterfaceSchema } from "./network-interface.js";
import { parseVmConfig, VmResources } from "./vm-resources.js";

const drive = (drive_id: string, is_root_device: boolean): DriveConfig =>
  driveSchema.parse({ drive_id, path_on_host: `/img/${drive_id}`, is_root_device });

test("the root drive is kept first; a second root is refused", () => {
  const resources = new VmResources();
  resources.insertDrive(drive("data", false));
  resources.insertDrive(drive("rootfs", true));
  assert.deepEqual(resources.snapshot().drives.map((d) => d.drive_id), ["rootfs", "data"]);
  assert.throws(() => resources.insertDrive(drive("other", true)), /is_root_device: A root block device already exists! \(drive "rootfs"\)/);
  resources.insertDrive(drive("rootfs", true));
  assert.equal(resources.snapshot().drives.length, 2);
});

test("a drive with a known id replaces the old one in place", () => {
  const resources = new VmResources();
  resources.insertDrive(drive("a", false));
  resources.insertDrive(drive("b", false));
  resources.insertDrive({ ...drive("a", false), is_read_only: true });
  assert.deepEqual(resources.snapshot().drives.map((d) => [d.drive_id, d.is_read_only]), [["a", true], ["b", false]]);
});

test("updateDrive swaps the path of a known drive only", () => {
  const resources = new VmResources();
  resources.insertDrive(drive("rootfs", true));
  assert.equal(resources.updateDrive({ drive_id: "rootfs", path_on_host: "/new" }).path_on_host, "/new");
  assert.throws(() => resources.updateDrive({ drive_id: "nope", path_on_host: "/x" }), /drive_id: no drive "nope" is configured/);
});

test("guest MACs and TAP devices are unique across interfaces", () => {
  const resources = new VmResources();
  const iface = (iface_id: string, host_dev_name: string, guest_mac: string) =>
    networkInterfaceSchema.parse({ iface_id, host_dev_name, guest_mac });
  resources.insertNetworkInterface(iface("eth0", "tap0", "06:00:00:00:00:01"));
  assert.throws(() => resources.insertNetworkInterface(iface("eth1", "tap1", "06:00:00:00:00:01")), /guest_mac: The MAC address is already in use: 06:00:00:00:00:01 \(network interface "eth0"\)/);
  assert.throws(() => resources.insertNetworkInterface(iface("eth1", "tap0", "06:00:00:00:00:02")), /host_dev_name: tap0 is already used/);
  resources.insertNetworkInterface(iface("eth0", "tap0", "06:00:00:00:00:01"));
});

test("snapshot is a copy", () => {
  const resources = new VmResources();
  resources.insertDrive(drive("rootfs", true));
  resources.snapshot().drives[0].path_on_host = "/changed";
  assert.equal(resources.snapshot().drives[0].path_on_host, "/img/rootfs");
});

test("bootableConfig needs a boot source", () => {
  const resources = new VmResources();
  assert.equal(resources.bootableConfig(), undefined);
  resources.setBootSource({ kernel_image_path: "/k" });
  assert.deepEqual(resources.bootableConfig(), {
    "boot-source": { kernel_image_path: "/k" },
    "machine-config": DEFAULT_MACHINE_CONFIG,
    drives: [],
    "network-interfaces": [],
  });
});

test("parseVmConfig names the list item that breaks a rule", () => {
  const config = {
    "boot-source": { kernel_image_path: "/k" },
    drives: [drive("a", true), drive("b", true)],
  };
  assert.throws(() => parseVmConfig(config), /^ConfigError: drives\[1\]\.is_root_device: A root block device already exists!/);
  assert.throws(
    () => parseVmConfig({ ...config, drives: [drive("a", false), drive("a", false)] }),
    /drives\[1\]\.drive_id: "a" is already used by drives\[0\]/,
  );
  assert.throws(
    () => parseVmConfig({ ...config, drives: [], "machine-config": { vcpu_count: 3, mem_size_mib: 128, smt: true } }),
    /machine-config\.vcpu_count: The number of vCPUs must be greater than 0, less than 32 and must be 1 or an even number if SMT is enabled\./,
  );
  assert.throws(() => parseVmConfig({ ...config, "pmem": [] }), /petasan does not support virtio-pmem devices yet/);
});

test("the config file's balloon section: Firecracker's fields and defaults, its size rule, hinting refused", () => {
  const config = { "boot-source": { kernel_image_path: "k" }, "machine-config": { vcpu_count: 1, mem_size_mib: 128 } };
  assert.deepEqual(parseVmConfig({ ...config, balloon: { amount_mib: 1, deflate_on_oom: false } }).balloon, {
    amount_mib: 1, deflate_on_oom: false, stats_polling_interval_s: 0, free_page_hinting: false, free_page_reporting: false,
  });
  assert.throws(() => parseVmConfig({ ...config, balloon: { amount_mib: 129, deflate_on_oom: true } }), /^ConfigError: balloon\.amount_mib: Amount of pages requested is too large\.$/);
  assert.throws(() => parseVmConfig({ ...config, balloon: { amount_mib: 1 } }), /deflate_on_oom/);
  assert.throws(() => parseVmConfig({ ...config, balloon: { amount_mib: 1, deflate_on_oom: true, stats_polling_interval_s: 65536 } }), /stats_polling_interval_s/);
  assert.throws(() => parseVmConfig({ ...config, balloon: { amount_mib: 1, deflate_on_oom: true, free_page_hinting: true } }), /petasan does not support balloon free page hinting yet/);
});

test("PUT /machine-config without cpu_template keeps the template set before, as Firecracker's MachineConfig::update", () => {
  const resources = new VmResources();
  resources.setMachineConfig(machineConfigSchema.parse({ vcpu_count: 2, mem_size_mib: 256, cpu_template: "T2", smt: true }));
  resources.setMachineConfig(machineConfigSchema.parse({ vcpu_count: 1, mem_size_mib: 128 }));
  assert.deepEqual(resources.getMachineConfig(), { ...DEFAULT_MACHINE_CONFIG, cpu_template: "T2" });
  resources.setMachineConfig(machineConfigSchema.parse({ vcpu_count: 1, mem_size_mib: 128, cpu_template: "None" }));
  assert.deepEqual(resources.getMachineConfig(), DEFAULT_MACHINE_CONFIG);
});

test("PUT /logger keeps the fields it was not given, except level, as Firecracker's Logger::update", () => {
  const resources = new VmResources();
  resources.setLogger({ log_path: "/a", level: "Debug", show_level: true, module: "vmm" });
  resources.setLogger({ log_path: "/b", show_log_origin: true });
  assert.deepEqual(resources.snapshot().logger, { log_path: "/b", show_level: true, module: "vmm", show_log_origin: true });
});
