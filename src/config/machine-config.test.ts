import assert from "node:assert/strict";
import { test } from "node:test";
import { applyMachineConfigUpdate, cpuTemplateOf, DEFAULT_MACHINE_CONFIG, machineConfigSchema } from "./machine-config.js";

test("PUT fills Firecracker's defaults", () => {
  assert.deepEqual(machineConfigSchema.parse({ vcpu_count: 2, mem_size_mib: 256 }), {
    ...DEFAULT_MACHINE_CONFIG,
    vcpu_count: 2,
    mem_size_mib: 256,
  });
});

test("cpu_template keeps Firecracker's names; petasan's host is None; the VMM maps them to its templates", () => {
  const template = (value: string) => machineConfigSchema.parse({ vcpu_count: 1, mem_size_mib: 128, cpu_template: value }).cpu_template;
  assert.equal(template("minimal"), "minimal");
  assert.equal(template("None"), "None");
  assert.equal(template("host"), "None");
  assert.equal(template("T2S"), "T2S");
  assert.throws(() => template("Skylake"), /cpu_template: must be one of "None", "C3", "T2", "T2S", "T2CL", "T2A", "host", "minimal"/);
  assert.equal(cpuTemplateOf({}), "host");
  assert.equal(cpuTemplateOf({ cpu_template: "T2S" }), "minimal");
  assert.equal(cpuTemplateOf({ cpu_template: "minimal" }), "minimal");
});

test("a config without a template has no cpu_template field, as Firecracker reports it", () => {
  assert.equal("cpu_template" in DEFAULT_MACHINE_CONFIG, false);
  assert.equal("cpu_template" in machineConfigSchema.parse({ vcpu_count: 1, mem_size_mib: 128 }), false);
  assert.equal("cpu_template" in applyMachineConfigUpdate({ ...DEFAULT_MACHINE_CONFIG, cpu_template: "T2" }, { cpu_template: "None" }), false);
});

test("smt needs 1 or an even number of vCPUs", () => {
  assert.deepEqual(applyMachineConfigUpdate(DEFAULT_MACHINE_CONFIG, { smt: true }).smt, true);
  assert.throws(
    () => applyMachineConfigUpdate({ ...DEFAULT_MACHINE_CONFIG, vcpu_count: 3 }, { smt: true }),
    /^ConfigError: vcpu_count: The number of vCPUs must be greater than 0, less than 32 and must be 1 or an even number if SMT is enabled\.$/,
  );
});

test("huge pages need an even number of MiB", () => {
  assert.throws(
    () => applyMachineConfigUpdate({ ...DEFAULT_MACHINE_CONFIG, mem_size_mib: 129 }, { huge_pages: "2M" }),
    /^ConfigError: mem_size_mib: The memory size \(MiB\) is either 0, or not a multiple of the configured page size\.$/,
  );
});

test("an update does not change the config it merges into", () => {
  const current = { ...DEFAULT_MACHINE_CONFIG };
  applyMachineConfigUpdate(current, { vcpu_count: 4 });
  assert.equal(current.vcpu_count, 1);
});
