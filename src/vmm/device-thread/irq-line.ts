/** InterruptLines backed by the VM: a GSI driven with KVM_IRQ_LINE (level) or an irqfd (edge, no syscall to KVM). */
import type { Vm } from "../../kvm/vm.js";
import type { InterruptLine } from "../../devices/interrupt.js";
import { signalEventFd } from "../../sys/eventfd.js";

/** A legacy ISA line through the in-kernel PIC/IOAPIC. Only level changes reach KVM. */
export function kvmIrqLine(vm: Vm, gsi: number): InterruptLine {
  let level = false;
  return {
    setLevel(high: boolean) {
      if (high === level) return;
      level = high;
      vm.setIrqLine(gsi, high);
    },
    trigger() {
      vm.setIrqLine(gsi, true);
      vm.setIrqLine(gsi, false);
      level = false;
    },
  };
}

/**
 * A legacy ISA line for a device whose registers several threads serve: every level change the device reports goes
 * to KVM. The device remembers its level in its shared state, so no thread may keep its own copy (one thread's copy
 * would go stale when another changes the line).
 */
export function kvmLevelLine(vm: Vm, gsi: number): InterruptLine {
  return {
    setLevel: (high: boolean) => vm.setIrqLine(gsi, high),
    trigger() {
      vm.setIrqLine(gsi, true);
      vm.setIrqLine(gsi, false);
    },
  };
}

/** An edge line through an irqfd registered with KVM by the builder. */
export function irqfdLine(fd: number): InterruptLine {
  return {
    setLevel(high: boolean) {
      if (high) signalEventFd(fd);
    },
    trigger() {
      signalEventFd(fd);
    },
  };
}
