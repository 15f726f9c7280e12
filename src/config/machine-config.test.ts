import assert from "node:assert/strict";
import { test } from "node:test";
import { applyMachineConfigUpdate, DEFAULT_MACHINE_CONFIG, machineConfigSchema } from "./machine-config.js";

test("PUT fills Firecracker's defaults", () => {
  assert.deepEqual(machineConfigSchema.parse({ vcpu_count: 2, mem_size_mib: 256 }), {
    ...DEFAULT_MACHINE_CONFIG,
    vcpu_count: 2,
    mem_size_mib: 256,
  });
});

test("cpu_template accepts petasan's names and maps Firecracker's", () => {
  const template = (value: string) => machineConfigSchema.parse({ vcpu_count: 1, mem_size_mib: 128, cpu_template: value }).cpu_template;
  assert.equal(template("minimal"), "minimal");
  assert.equal(template("None"), "host");
  assert.equal(template("T2S"), "minimal");
  assert.throws(() => template("Skylake"), /cpu_template: must be one of "host", "minimal", "None"/);
});

test("smt needs 1 or an even number of vCPUs", () => {
  assert.deepEqual(applyMachineConfigUpdate(DEFAULT_MACHINE_CONFIG, { smt: true }).smt, true);
  assert.throws(
    () => applyMachineConfigUpdate({ ...DEFAULT_MACHINE_CONFIG, vcpu_count: 3 }, { smt: true }),
    /vcpu_count: must be 1 or an even number when smt is enabled/,
  );
});

test("huge pages need an even number of MiB", () => {
  assert.throws(
    () => applyMachineConfigUpdate({ ...DEFAULT_MACHINE_CONFIG, mem_size_mib: 129 }, { huge_pages: "2M" }),
    /mem_size_mib: must be a multiple of 2 when huge_pages is "2M"/,
  );
});

test("an update does not change the config it merges into", () => {
  const current = { ...DEFAULT_MACHINE_CONFIG };
  applyMachineConfigUpdate(current, { vcpu_count: 4 });
  assert.equal(current.vcpu_count, 1);
});
