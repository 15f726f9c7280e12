/**
 * Guest RAM backing on a real VM (a small test guest, no Linux boot): machine-config huge_pages and petasan's
 * host options reach Linux, as /proc/self/smaps and numa_maps show for the VM's guest RAM mapping.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { createVm, type VirtualMachine } from "petasan";
import { buildTestGuest } from "../guests/build.js";
import { kvmSkipReason } from "./kvm-available.js";
import { mappingsOfSize, numaPolicyOf, smapsOf } from "../../src/memory/testing/smaps.js";

const skip = kvmSkipReason();
const MEM_MIB = 66;
const MEM_BYTES = MEM_MIB << 20;
const NR_HUGEPAGES = "/proc/sys/vm/nr_hugepages";

/** The VM's guest RAM: the one mapping of MEM_BYTES with `flag` in its VmFlags. */
function guestRam(flag: string): bigint {
  const found = mappingsOfSize(MEM_BYTES).filter((a) => smapsOf(a).vmFlags.includes(flag));
  assert.equal(found.length, 1, `mappings of ${MEM_MIB} MiB with VmFlags ${flag}: ${found.length}`);
  return found[0];
}

async function untilReady(vm: VirtualMachine): Promise<void> {
  let out = "";
  vm.console.setEncoding("utf8");
  vm.console.on("data", (d: string) => (out += d));
  const deadline = Date.now() + 60_000;
  while (!out.includes("echo: ready\n")) {
    if (Date.now() > deadline) throw new Error(`the guest did not start; console:\n${out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("default guest RAM is advised for THP; KSM and NUMA placement are opt-in petasan options", { skip }, async () => {
  const config = { "boot-source": { kernel_image_path: await buildTestGuest("echo") }, "machine-config": { vcpu_count: 1, mem_size_mib: MEM_MIB } };
  const plain = createVm(config);
  await plain.start();
  try {
    await untilReady(plain);
    const ram = guestRam("hg");
    assert.ok(!smapsOf(ram).vmFlags.includes("mg"));
    assert.equal(numaPolicyOf(ram), "default");
  } finally {
    await plain.stop();
  }
  const placed = createVm(config, { host: { ksm: true, numaNode: 0 } });
  await placed.start();
  try {
    await untilReady(placed);
    const ram = guestRam("mg");
    assert.ok(smapsOf(ram).vmFlags.includes("hg"));
    assert.equal(numaPolicyOf(ram), "bind:0");
  } finally {
    await placed.stop();
  }
  const nowhere = createVm(config, { host: { numaNode: 63 } });
  await assert.rejects(nowhere.start(), /NUMA node 63 does not exist on this host/);
});

const canReserve = (() => {
  try {
    writeFileSync(NR_HUGEPAGES, readFileSync(NR_HUGEPAGES, "utf8").trim());
    return true;
  } catch {
    return false;
  }
})();

test("huge_pages 2M: guest RAM on hugetlbfs pages when the host has them, a clear start error when not", { skip: skip ?? (canReserve ? false : `cannot write ${NR_HUGEPAGES} (needs root)`) }, async () => {
  const config = {
    "boot-source": { kernel_image_path: await buildTestGuest("echo") },
    "machine-config": { vcpu_count: 1, mem_size_mib: MEM_MIB, huge_pages: "2M" as const },
  };
  const previous = readFileSync(NR_HUGEPAGES, "utf8").trim();
  try {
    writeFileSync(NR_HUGEPAGES, "0");
    await assert.rejects(createVm(config).start(), /needs 33 free 2 MiB huge pages and the host has 0/);

    writeFileSync(NR_HUGEPAGES, "40");
    const vm = createVm(config);
    await vm.start();
    try {
      await untilReady(vm);
      const ram = guestRam("ht");
      assert.equal(smapsOf(ram).kb.KernelPageSize, 2048);
    } finally {
      await vm.stop();
    }
  } finally {
    writeFileSync(NR_HUGEPAGES, previous);
  }
});

test("a balloon reaches the device thread: requests before the guest driver starts it get Firecracker's answers", { skip }, async () => {
  const kernel = await buildTestGuest("echo");
  const vm = createVm({
    "boot-source": { kernel_image_path: kernel },
    "machine-config": { vcpu_count: 1, mem_size_mib: 64 },
    balloon: { amount_mib: 16, deflate_on_oom: true, stats_polling_interval_s: 1, free_page_reporting: true },
  });
  await vm.start();
  try {
    await untilReady(vm);
    // The echo guest has no virtio driver: the device is placed but never activated.
    await assert.rejects(vm.setBalloonTarget(8), /^Error: Device not activated yet\.$/);
    assert.deepEqual(await vm.balloonStatistics(), { target_pages: 16 * 256, actual_pages: 0, target_mib: 16, actual_mib: 0 });
    await assert.rejects(vm.setBalloonStatsInterval(0), /Statistics cannot be enabled\/disabled after activation/);
    await vm.setBalloonStatsInterval(2);
    assert.deepEqual(await vm.balloonState(), { amount_mib: 16, stats_polling_interval_s: 2 });
  } finally {
    await vm.stop();
  }
  const without = createVm({ "boot-source": { kernel_image_path: kernel }, "machine-config": { vcpu_count: 1, mem_size_mib: 64 } });
  await without.start();
  try {
    await untilReady(without);
    await assert.rejects(without.setBalloonTarget(8), /No balloon device found\./);
  } finally {
    await without.stop();
  }
});
