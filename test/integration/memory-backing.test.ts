/**
 * Guest RAM backing on a real VM (a small test guest, no Linux boot): machine-config huge_pages and petasan's
 * host options reach Linux, as /proc/self/smaps and numa_maps show for the VM's guest RAM mapping.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createVm, loadSnapshot, type VirtualMachine } from "petasan";
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

test("huge_pages 2M: guest RAM on hugetlbfs pages when the host has them, a clear start error when not; its snapshot loads only off hugetlbfs", { skip: skip ?? (canReserve ? false : `cannot write ${NR_HUGEPAGES} (needs root)`) }, async () => {
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
    const dir = mkdtempSync(path.join(tmpdir(), "petasan-hugepages-"));
    try {
      await untilReady(vm);
      const ram = guestRam("ht");
      assert.equal(smapsOf(ram).kb.KernelPageSize, 2048);
      // As Firecracker: a VM on hugetlbfs pages can be snapshotted, but its memory file cannot be mapped back onto
      // hugetlbfs pages (that needs a Uffd backend): the load says so and what loads it instead.
      await vm.pause();
      const source = { snapshotPath: path.join(dir, "vm.snap"), memFilePath: path.join(dir, "vm.mem") };
      await vm.snapshot(source);
      await vm.stop();
      assert.throws(() => loadSnapshot(source), { name: "VmConfigError", message: /2M huge pages \(hugetlbfs\) by mapping the memory file \(the snapshot's VM used them\).*load it with huge_pages "None" or "Transparent"/ });
      assert.throws(() => loadSnapshot({ ...source, hugePages: "2M" }), /needs a Uffd memory backend/);
      const restored = loadSnapshot({ ...source, hugePages: "None" });
      assert.equal(restored.config["machine-config"].huge_pages, "None");
      let out = "";
      restored.console.setEncoding("utf8").on("data", (d: string) => (out += d));
      await restored.start();
      try {
        restored.console.write("hi");
        for (const deadline = Date.now() + 30_000; !out.includes("HI"); await new Promise((r) => setTimeout(r, 20))) {
          if (Date.now() > deadline) throw new Error(`the restored guest did not echo; console:\n${out}`);
        }
      } finally {
        await restored.stop();
      }
      // "Transparent" advises the restored mapping of the memory file for THP, as Firecracker's snapshot_file does.
      const transparent = loadSnapshot({ ...source, hugePages: "Transparent" }, { console: "none" });
      await transparent.start();
      try {
        assert.ok(smapsOf(guestRam("hg")).vmFlags.includes("hg"));
      } finally {
        await transparent.stop();
      }
    } finally {
      await vm.stop();
      rmSync(dir, { recursive: true, force: true });
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
