/**
 * The Intel MultiProcessor table (MP Spec 1.4, chapter 4): how a guest without ACPI finds its
 * CPUs, its IOAPIC and the routing of ISA interrupts. Structure layouts: Linux
 * arch/x86/include/asm/mpspec_def.h (mpf_intel, mpc_table, mpc_cpu, mpc_bus, mpc_ioapic,
 * mpc_intsrc, mpc_lintsrc). Linux finds the floating pointer by scanning [639 KiB, 640 KiB)
 * (arch/x86/kernel/mpparse.c), so the table starts at the EBDA.
 */

import type { GuestMemory } from "../memory/guest-memory.js";
import { IOAPIC_ADDR, LAPIC_ADDR, MPTABLE_ADDR, MPTABLE_AREA_END } from "../arch/x86/layout.js";
import type { AddressRange } from "./boot-layout.js";

export class MpTableError extends Error {
  override readonly name = "MpTableError";
}

/** APIC ids are 8-bit, 0xff is broadcast and the IOAPIC takes id N: at most 254 CPUs. */
export const MAX_MP_CPUS = 254;
/**
 * IOAPIC pins with an interrupt source entry: all 24 pins of KVM's IOAPIC
 * (KVM_IOAPIC_NUM_PINS), so device interrupts on GSIs 16..23 have a route too.
 */
export const MP_IRQ_PINS = 24;

const MPF_SIZE = 16;
const MPC_HEADER_SIZE = 44;
const MPC_CPU_SIZE = 20;
const MPC_SMALL_ENTRY_SIZE = 8; // bus, ioapic, intsrc, lintsrc

// Entry types (MP Spec table 4-3).
const MP_PROCESSOR = 0;
const MP_BUS = 1;
const MP_IOAPIC = 2;
const MP_INTSRC = 3;
const MP_LINTSRC = 4;
// Interrupt types (MP Spec table 4-10).
const MP_INT = 0;
const MP_NMI = 1;
const MP_EXTINT = 3;
const CPU_ENABLED = 1;
const CPU_BOOTPROCESSOR = 2;
const MPC_APIC_USABLE = 1;
/** Local APIC version of KVM's in-kernel LAPIC (arch/x86/kvm/lapic.c: APIC_VERSION 0x14). */
const LAPIC_VERSION = 0x14;
/** KVM's IOAPIC version (arch/x86/kvm/ioapic.h: IOAPIC_VERSION_ID 0x11). */
const IOAPIC_VERSION = 0x11;
/** CPU signature: family 6, as Firecracker's mptable.rs (CPU_STEPPING 0x600). */
const CPU_SIGNATURE = 0x600;
/** CPUID.1:EDX feature bits FPU (bit 0) and APIC (bit 9). */
const CPU_FEATURES = 0x201;
/** MP Spec 1.4 is revision 4. */
const MP_SPEC_REVISION = 4;
const ALL_LOCAL_APICS = 0xff;

/** Bytes the MP structures take for `cpus` CPUs. */
export function mpTableSize(cpus: number): number {
  return MPF_SIZE + MPC_HEADER_SIZE + cpus * MPC_CPU_SIZE + (2 + MP_IRQ_PINS + 2) * MPC_SMALL_ENTRY_SIZE;
}

/** Two's-complement byte that makes all bytes of `bytes` sum to 0 mod 256. */
function checksumByte(bytes: Uint8Array): number {
  return (256 - (bytes.reduce((sum, b) => sum + b, 0) & 0xff)) & 0xff;
}

function ascii(dst: Uint8Array, off: number, text: string): void {
  for (let i = 0; i < text.length; i++) dst[off + i] = text.charCodeAt(i);
}

/** Writes the MP floating pointer and configuration table for `cpus` CPUs at MPTABLE_ADDR. */
export function writeMpTable(mem: GuestMemory, cpus: number): AddressRange {
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > MAX_MP_CPUS) throw new MpTableError(`cannot describe ${cpus} CPUs: 1 to ${MAX_MP_CPUS} are possible`);
  const size = mpTableSize(cpus);
  if (MPTABLE_ADDR + size > MPTABLE_AREA_END) throw new MpTableError(`MP table of ${size} bytes for ${cpus} CPUs exceeds its ${MPTABLE_AREA_END - MPTABLE_ADDR}-byte area`);
  if (!mem.contains(MPTABLE_ADDR, size)) throw new MpTableError(`guest RAM does not cover the MP table area at 0x${MPTABLE_ADDR.toString(16)}`);

  const ioapicId = cpus;
  const table = new Uint8Array(size - MPF_SIZE);
  const v = new DataView(table.buffer);
  let off = MPC_HEADER_SIZE;
  const small = (type: number, b1: number, b2: number, b3: number) => {
    table[off] = type;
    table[off + 1] = b1;
    table[off + 2] = b2;
    table[off + 3] = b3;
  };
  for (let id = 0; id < cpus; id++) {
    small(MP_PROCESSOR, id, LAPIC_VERSION, CPU_ENABLED | (id === 0 ? CPU_BOOTPROCESSOR : 0));
    v.setUint32(off + 4, CPU_SIGNATURE, true);
    v.setUint32(off + 8, CPU_FEATURES, true);
    off += MPC_CPU_SIZE;
  }
  table[off] = MP_BUS; // bus 0, type "ISA   " (MP Spec table 4-8)
  ascii(table, off + 2, "ISA   ");
  off += MPC_SMALL_ENTRY_SIZE;
  small(MP_IOAPIC, ioapicId, IOAPIC_VERSION, MPC_APIC_USABLE);
  v.setUint32(off + 4, IOAPIC_ADDR, true);
  off += MPC_SMALL_ENTRY_SIZE;
  for (let irq = 0; irq < MP_IRQ_PINS; irq++) {
    // irqflag 0: conforming polarity/trigger (ISA: edge, active high); bus 0 irq -> IOAPIC pin irq.
    small(MP_INTSRC, MP_INT, 0, 0);
    table.set([0, irq, ioapicId, irq], off + 4);
    off += MPC_SMALL_ENTRY_SIZE;
  }
  // Virtual wire: the 8259 reaches the BSP's LINT0 as ExtINT; NMI goes to LINT1 of every CPU.
  small(MP_LINTSRC, MP_EXTINT, 0, 0);
  table.set([0, 0, 0, 0], off + 4);
  off += MPC_SMALL_ENTRY_SIZE;
  small(MP_LINTSRC, MP_NMI, 0, 0);
  table.set([0, 0, ALL_LOCAL_APICS, 1], off + 4);
  off += MPC_SMALL_ENTRY_SIZE;

  // Configuration table header (MP Spec 4.2).
  ascii(table, 0, "PCMP");
  v.setUint16(4, table.length, true);
  table[6] = MP_SPEC_REVISION;
  ascii(table, 8, "PETASAN ");
  ascii(table, 16, "PETASAN VM  ");
  v.setUint16(34, cpus + 2 + MP_IRQ_PINS + 2, true); // entry count
  v.setUint32(36, LAPIC_ADDR, true);
  table[7] = checksumByte(table);

  // Floating pointer (MP Spec 4.1): length in 16-byte units, feature bytes 0 = table present.
  const mpf = new Uint8Array(MPF_SIZE);
  ascii(mpf, 0, "_MP_");
  new DataView(mpf.buffer).setUint32(4, MPTABLE_ADDR + MPF_SIZE, true);
  mpf[8] = 1;
  mpf[9] = MP_SPEC_REVISION;
  mpf[10] = checksumByte(mpf);

  mem.write(MPTABLE_ADDR, mpf);
  mem.write(MPTABLE_ADDR + MPF_SIZE, table);
  return { start: MPTABLE_ADDR, end: MPTABLE_ADDR + size };
}
