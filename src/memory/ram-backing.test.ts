import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { view } from "../sys/libc.js";
import { unmap } from "./host-mapping.js";
import { HUGE_PAGE_SIZE, mapGuestRam, RamBackingError } from "./ram-backing.js";
import { numaPolicyOf, smapsOf } from "./testing/smaps.js";

const MiB = 1 << 20;

/** Maps, runs `check`, and unmaps whatever happens. */
function withRam(size: number, backing: Parameters<typeof mapGuestRam>[1], check: (addr: bigint) => void): void {
  const addr = mapGuestRam(size, backing);
  try {
    check(addr);
  } finally {
    unmap(addr, size);
  }
}

test("without hugetlbfs, guest RAM is advised MADV_HUGEPAGE, and THP backs it once touched", () => {
  withRam(16 * MiB, { hugePages: "None" }, (addr) => {
    assert.ok(smapsOf(addr).vmFlags.includes("hg"), `VmFlags: ${smapsOf(addr).vmFlags.join(" ")}`);
    new Uint8Array(view(addr, 16 * MiB)).fill(1);
    const thp = readFileSync("/sys/kernel/mm/transparent_hugepage/enabled", "utf8");
    // With THP "never" the advice is recorded but not acted on; this host has "madvise" (or "always").
    if (!thp.includes("[never]")) assert.ok(smapsOf(addr).kb.AnonHugePages > 0, `AnonHugePages ${smapsOf(addr).kb.AnonHugePages} kB`);
  });
  withRam(4 * MiB, { hugePages: "Transparent" }, (addr) => assert.ok(smapsOf(addr).vmFlags.includes("hg")));
});

test("KSM is opt-in: MADV_MERGEABLE only when asked", () => {
  withRam(4 * MiB, { hugePages: "None" }, (addr) => assert.ok(!smapsOf(addr).vmFlags.includes("mg")));
  withRam(4 * MiB, { hugePages: "None", ksm: true }, (addr) => assert.ok(smapsOf(addr).vmFlags.includes("mg"), smapsOf(addr).vmFlags.join(" ")));
  // Linux would accept the advice on hugetlbfs and ignore it: refused instead.
  assert.throws(() => mapGuestRam(4 * MiB, { hugePages: "2M", ksm: true }), /KSM cannot merge hugetlbfs pages/);
});

test("numaNode binds guest RAM to that node (numa_maps), and a node the host lacks is a clear error", () => {
  withRam(4 * MiB, { hugePages: "None" }, (addr) => assert.equal(numaPolicyOf(addr), "default"));
  withRam(4 * MiB, { hugePages: "None", numaNode: 0 }, (addr) => assert.equal(numaPolicyOf(addr), "bind:0"));
  assert.throws(() => mapGuestRam(4 * MiB, { hugePages: "None", numaNode: 63 }), /NUMA node 63 does not exist on this host/);
  assert.throws(() => mapGuestRam(4 * MiB, { hugePages: "None", numaNode: 64 }), /nodes 0\.\.63/);
});

const NR_HUGEPAGES = "/proc/sys/vm/nr_hugepages";

/** Runs `fn` with `pages` 2 MiB pages reserved on the host, then puts the previous reservation back. */
function withHugePagesReserved(pages: number, fn: () => void): void {
  const previous = readFileSync(NR_HUGEPAGES, "utf8").trim();
  try {
    writeFileSync(NR_HUGEPAGES, String(pages));
    fn();
  } finally {
    writeFileSync(NR_HUGEPAGES, previous);
  }
}

const canReserve = (() => {
  try {
    writeFileSync(NR_HUGEPAGES, readFileSync(NR_HUGEPAGES, "utf8").trim());
    return true;
  } catch {
    return false;
  }
})();

test("huge_pages 2M: guest RAM on hugetlbfs pages, or a clear error naming the shortfall", { skip: canReserve ? false : `cannot write ${NR_HUGEPAGES} (needs root)` }, () => {
  withHugePagesReserved(4, () => {
    const free = Number(/^HugePages_Free:\s+(\d+)/m.exec(readFileSync("/proc/meminfo", "utf8"))![1]);
    assert.ok(free >= 2, `the host reserved only ${free} huge pages`);
    withRam(2 * HUGE_PAGE_SIZE, { hugePages: "2M" }, (addr) => {
      const facts = smapsOf(addr);
      assert.equal(facts.kb.KernelPageSize, 2048);
      assert.ok(facts.vmFlags.includes("ht"), facts.vmFlags.join(" "));
      new Uint8Array(view(addr, 2 * HUGE_PAGE_SIZE)).fill(7);
    });
    // More than the host has: refused at mmap (pages are reserved then), not a SIGBUS in the guest later.
    assert.throws(
      () => mapGuestRam(64 * HUGE_PAGE_SIZE, { hugePages: "2M" }),
      (e: Error) => e instanceof RamBackingError && /needs 64 free 2 MiB huge pages and the host has \d+/.test(e.message) && /nr_hugepages/.test(e.message),
    );
  });
  assert.throws(() => mapGuestRam(3 * MiB, { hugePages: "2M" }), /not a whole number of 2 MiB pages/);
});
