import { test } from "node:test";
import assert from "node:assert/strict";
import { vcpuCpuid, CpuidError } from "./cpuid.js";
import type { CpuidEntry } from "../../kvm/kvm.js";

const leaf = (fn: number, index = 0, regs: Partial<CpuidEntry> = {}): CpuidEntry => ({ function: fn, index, flags: 0, eax: 0, ebx: 0, ecx: 0, edx: 0, ...regs });
const supported: CpuidEntry[] = [
  leaf(0, 0, { eax: 0xd }),
  leaf(1, 0, { ebx: 0x0000_0800, ecx: 0xfffa_3203, edx: 0xffff_ffff }),
  leaf(7, 0, { ebx: 0xffff_ffff }),
  leaf(0xb, 0), leaf(0xb, 1),
  leaf(0xd, 0, { eax: 7 }),
  leaf(0x8000_0001, 0, { ecx: 0xffff_ffff, edx: 0xffff_ffff }),
  leaf(0x4000_0001, 0, { eax: 0x0001_ffff }),
  leaf(0x8000_0008, 0, { eax: 0x3030, ecx: 0x700f }),
  leaf(0x8000_001e, 0, { eax: 9, ebx: 0x109, ecx: 0x300 }),
];
const find = (entries: CpuidEntry[], fn: number, index = 0) => entries.find((e) => e.function === fn && e.index === index);

test("each vCPU sees its own APIC id, the vCPU count and the KVM signature", () => {
  for (const id of [0, 3]) {
    const c = vcpuCpuid(supported, { vcpuId: id, vcpuCount: 4, template: "host", hypercalls: true });
    const l1 = find(c, 1)!;
    assert.equal(l1.ebx >>> 24, id);
    assert.equal((l1.ebx >>> 16) & 0xff, 4);
    assert.equal(l1.ebx & 0xff00, 0x800, "CLFLUSH line size kept");
    assert.ok(l1.ecx & (1 << 31), "hypervisor bit");
    assert.equal(find(c, 0xb, 0)!.edx, id);
    assert.equal(find(c, 0xb, 1)!.ebx, 4);
    assert.equal(find(c, 0xb, 1)!.eax, 2, "two bits of core id for 4 vCPUs");
    assert.equal(find(c, 0x8000_0008)!.ecx, 0x2003, "AMD: 4 cores, 2 APIC id bits");
    assert.deepEqual([find(c, 0x8000_001e)!.eax, find(c, 0x8000_001e)!.ebx, find(c, 0x8000_001e)!.ecx], [id, id, 0]);
    const sig = find(c, 0x4000_0000)!;
    assert.equal(Buffer.from(new Uint32Array([sig.ebx, sig.ecx, sig.edx]).buffer).toString("latin1"), "KVMKVMKVM\0\0\0");
  }
  assert.equal(supported[1].ebx, 0x800, "input untouched");
});

test("the minimal template keeps only the x86-64 baseline", () => {
  const c = vcpuCpuid(supported, { vcpuId: 0, vcpuCount: 1, template: "minimal", hypercalls: true });
  const l1 = find(c, 1)!;
  assert.equal(l1.ecx, (1 | (1 << 21) | (1 << 31)) >>> 0);
  assert.equal(l1.edx & (1 << 28), 0, "no HTT with one vCPU");
  assert.equal(find(c, 7)!.ebx, 0);
  assert.equal(find(c, 0xd), undefined);
  assert.equal(find(c, 0x8000_0001)!.edx, ((1 << 11) | (1 << 20) | (1 << 29)) >>> 0);
});

test("an unknown template is refused by name", () => {
  assert.throws(() => vcpuCpuid(supported, { vcpuId: 0, vcpuCount: 1, template: "t2" as never, hypercalls: true }), (e: Error) => e instanceof CpuidError && /"t2"/.test(e.message));
});

test("where KVM emulates ring 0, paravirt features that need hypercalls are hidden", () => {
  const eax = (hypercalls: boolean) => find(vcpuCpuid(supported, { vcpuId: 0, vcpuCount: 2, template: "host", hypercalls }), 0x4000_0001)!.eax;
  assert.equal(eax(true), 0x0001_ffff);
  assert.equal(eax(false), (0x0001_ffff & ~((1 << 7) | (1 << 11) | (1 << 13) | (1 << 16))) >>> 0);
});
