/**
 * What a device gets instead of the VM: an interrupt line. The device manager backs it with
 * KVM_IRQ_LINE (legacy ISA devices, level semantics) or an irqfd (virtio, edge).
 */
export interface InterruptLine {
  /** Drives the line to `high` (level-triggered devices such as the 16550's INTR output). */
  setLevel(high: boolean): void;
  /** Delivers one edge-triggered interrupt. */
  trigger(): void;
}
