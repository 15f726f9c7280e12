/**
 * Local APIC LINT pins as a PC wires them (Intel MP spec 1.4, 5.1 / SDM vol. 3, 11.5.1): LINT0 takes the
 * 8259 PIC's output as ExtINT, LINT1 is NMI. Without this the legacy PIC interrupts never reach the CPU.
 */
const APIC_LVT_LINT0 = 0x350;
const APIC_LVT_LINT1 = 0x360;
/** Delivery mode field, bits 10:8 of an LVT entry. */
const DELIVERY_MODE_SHIFT = 8;
const DELIVERY_MODE_MASK = 0x7 << DELIVERY_MODE_SHIFT;
const DELIVERY_MODE_NMI = 0x4;
const DELIVERY_MODE_EXTINT = 0x7;

/** Returns a copy of the KVM_GET_LAPIC register page with LINT0 = ExtINT and LINT1 = NMI. */
export function withLegacyLints(lapic: Uint8Array): Uint8Array {
  const out = lapic.slice();
  const dv = new DataView(out.buffer);
  const set = (reg: number, mode: number) => {
    const v = dv.getUint32(reg, true);
    dv.setUint32(reg, ((v & ~DELIVERY_MODE_MASK) | (mode << DELIVERY_MODE_SHIFT)) >>> 0, true);
  };
  set(APIC_LVT_LINT0, DELIVERY_MODE_EXTINT);
  set(APIC_LVT_LINT1, DELIVERY_MODE_NMI);
  return out;
}
