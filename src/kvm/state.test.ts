import { test } from "node:test";
import assert from "node:assert/strict";
import { kvmSkipReason } from "../../test/integration/kvm-available.js";
import { Kvm } from "./kvm.js";
import { kvmclockCtrl, orderMsrsForRestore, restoreVcpuState, restoreVmState, saveVcpuState, saveVmState, xsaveSize } from "./state.js";

const skip = kvmSkipReason();

test("MSRs restore TSC first and the TSC deadline last, a zero deadline replaced by the TSC", () => {
  const order = orderMsrsForRestore([{ index: 0x6e0, data: 0n }, { index: 0x174, data: 1n }, { index: 0x10, data: 99n }]);
  assert.deepEqual(order, [{ index: 0x10, data: 99n }, { index: 0x174, data: 1n }, { index: 0x6e0, data: 99n }]);
});

test("a vCPU's and a VM's KVM state survive a save into a fresh VM", { skip }, () => {
  const kvm = Kvm.open();
  try {
    const make = () => {
      const vm = kvm.createVm();
      vm.setTssAddr(0xfffbd000);
      vm.createIrqchip();
      vm.createPit2();
      const vcpu = vm.createVcpu(0);
      vcpu.setCpuid2(kvm.supportedCpuid());
      return { vm, vcpu };
    };
    const a = make();
    a.vcpu.setRegs({ rax: 0x1234n, rip: 0xfff0n, rflags: 2n });
    a.vcpu.setMsrs([{ index: 0x174, data: 0x10n }]);
    const size = xsaveSize(kvm);
    const vs = saveVcpuState(a.vcpu, kvm.msrIndexList(), size);
    const ms = saveVmState(a.vm);
    assert.ok(vs.msrs.length > 5, "some MSRs were read");
    assert.equal(vs.xsave.length, size);

    const b = make();
    restoreVmState(b.vm, ms);
    restoreVcpuState(b.vcpu, vs);
    assert.equal(b.vcpu.getRegs().rax, 0x1234n);
    assert.equal(b.vcpu.getMsrs([0x174])[0].data, 0x10n);
    assert.deepEqual(saveVcpuState(b.vcpu, kvm.msrIndexList(), size).sregs, vs.sregs);
    for (const x of [a, b]) {
      x.vcpu.close();
      x.vm.close();
    }
  } finally {
    kvm.close();
  }
});

test("a VM state of the wrong size or for the wrong chip is refused", { skip }, () => {
  const kvm = Kvm.open();
  try {
    const vm = kvm.createVm();
    vm.createIrqchip();
    vm.createPit2();
    const s = saveVmState(vm);
    assert.throws(() => restoreVmState(vm, { ...s, pit: s.pit.subarray(1) }), /pit state is 111 bytes/);
    assert.throws(() => restoreVmState(vm, { ...s, ioapic: s.picMaster }), /names irqchip 0, not 2/);
    vm.close();
  } finally {
    kvm.close();
  }
});

test("KVM_KVMCLOCK_CTRL on a guest without kvmclock is a quiet no-op", { skip }, () => {
  const kvm = Kvm.open();
  try {
    const vm = kvm.createVm();
    vm.createIrqchip();
    const vcpu = vm.createVcpu(0);
    assert.equal(kvmclockCtrl(vcpu), false, "KVM answers EINVAL until the guest enables kvmclock");
    vcpu.close();
    vm.close();
  } finally {
    kvm.close();
  }
});
