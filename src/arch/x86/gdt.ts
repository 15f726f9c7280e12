/**
 * The boot GDT and the segment register values that go with it.
 *
 * One GDT serves every entry mode. Selectors 0x10/0x18 are the __BOOT_CS/__BOOT_DS that the
 * Linux 64-bit boot protocol requires (boot.rst, "64-bit Boot Protocol"); 0x08 is a flat 32-bit
 * code segment for PVH and protected-mode entry (start_info.h: CS 32-bit read/execute, base 0,
 * limit 4 GiB); the TSS at 0x20 satisfies both ("TR: 32-bit TSS (active), base 0, limit 0x67").
 * Descriptor encoding: Intel SDM vol. 3, 3.4.5 (segment descriptors) and 7.2.3 (64-bit TSS).
 */

import type { GuestMemory } from "../../memory/guest-memory.js";
import { BOOT_GDT_ADDR, BOOT_IDT_ADDR, BOOT_IDT_SIZE } from "./layout.js";

/** Segment registers and descriptor tables are KVM's own structures (struct kvm_segment, struct kvm_dtable). */
export type { Segment, DescriptorTable } from "../../kvm/vcpu.js";
import type { Segment, DescriptorTable } from "../../kvm/vcpu.js";

export const BOOT_CS32_SELECTOR = 0x08;
/** __BOOT_CS (arch/x86/include/asm/segment.h: GDT_ENTRY_BOOT_CS = 2). */
export const BOOT_CS64_SELECTOR = 0x10;
/** __BOOT_DS (GDT_ENTRY_BOOT_DS = 3). */
export const BOOT_DS_SELECTOR = 0x18;
/** A 64-bit TSS descriptor takes two slots (0x20 and 0x28). */
export const BOOT_TSS_SELECTOR = 0x20;

// Access byte (SDM 3.4.5): P(7) DPL(6:5) S(4) type(3:0).
const ACCESS_CODE = 0x9b; // present, S=1, execute/read, accessed
const ACCESS_DATA = 0x93; // present, S=1, read/write, accessed
const ACCESS_TSS_BUSY = 0x8b; // present, S=0, type 11: busy 32/64-bit TSS (VMX requires TR type 11 in IA-32e mode)
// Flags nibble (SDM 3.4.5): G(3) D/B(2) L(1) AVL(0).
const FLAGS_CODE64 = 0b1010; // 4 KiB granularity, long mode
const FLAGS_FLAT32 = 0b1100; // 4 KiB granularity, 32-bit default size
const FLAGS_BYTE_GRANULAR = 0;
const FLAT_LIMIT = 0xfffff; // 20-bit limit; with G=1 covers 4 GiB
/** A TSS is 104 bytes (SDM 7.2.1 / 7.7); limit = size - 1. */
const TSS_LIMIT = 0x67;

/** Encodes a legacy 8-byte segment descriptor. */
export function encodeDescriptor(base: number, limit: number, access: number, flags: number): bigint {
  const b = BigInt(base >>> 0);
  const l = BigInt(limit & 0xfffff);
  return (
    (l & 0xffffn) |
    ((b & 0xffffffn) << 16n) |
    (BigInt(access & 0xff) << 40n) |
    ((l >> 16n) << 48n) |
    (BigInt(flags & 0xf) << 52n) |
    ((b >> 24n) << 56n)
  );
}

/** Decodes a descriptor into the kvm_segment form, scaling the limit when G is set. */
export function decodeDescriptor(raw: bigint, selector: number): Segment {
  const bits = (shift: bigint, mask: bigint) => Number((raw >> shift) & mask);
  const g = bits(55n, 1n);
  const rawLimit = bits(0n, 0xffffn) | (bits(48n, 0xfn) << 16);
  const present = bits(47n, 1n);
  return {
    base: (bits(16n, 0xffffffn) | (bits(56n, 0xffn) << 24)) >>> 0,
    limit: g ? ((rawLimit << 12) | 0xfff) >>> 0 : rawLimit,
    selector,
    type: bits(40n, 0xfn),
    present,
    dpl: bits(45n, 3n),
    db: bits(54n, 1n),
    s: bits(44n, 1n),
    l: bits(53n, 1n),
    g,
    avl: bits(52n, 1n),
    unusable: present ? 0 : 1,
  };
}

/** An unusable (null) segment: what the LDT register holds when no LDT exists. */
export function unusableSegment(): Segment {
  return { base: 0, limit: 0, selector: 0, type: 0, present: 0, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 1 };
}

/**
 * A real-mode segment register value: base = selector << 4, 64 KiB limit, code (type 0xb) or
 * data (type 3), as KVM's vCPU reset state has them.
 */
export function realModeSegment(selector: number, kind: "code" | "data"): Segment {
  return {
    base: (selector & 0xffff) * 16,
    limit: 0xffff,
    selector: selector & 0xffff,
    type: kind === "code" ? 0xb : 0x3,
    present: 1, dpl: 0, db: 0, s: 1, l: 0, g: 0, avl: 0, unusable: 0,
  };
}

/** The task register in real mode: VMX still requires a usable busy TSS (SDM 26.3.1.2), as at vCPU reset. */
export function realModeTaskRegister(): Segment {
  return { base: 0, limit: 0xffff, selector: 0, type: 0xb, present: 1, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 0 };
}

export interface BootGdt {
  gdt: DescriptorTable;
  idt: DescriptorTable;
  code32: Segment;
  code64: Segment;
  data: Segment;
  tss: Segment;
}

/** Writes the boot GDT at BOOT_GDT_ADDR and an empty IDT at BOOT_IDT_ADDR; returns the register values. */
export function writeBootGdt(mem: GuestMemory): BootGdt {
  const code32 = encodeDescriptor(0, FLAT_LIMIT, ACCESS_CODE, FLAGS_FLAT32);
  const code64 = encodeDescriptor(0, FLAT_LIMIT, ACCESS_CODE, FLAGS_CODE64);
  const data = encodeDescriptor(0, FLAT_LIMIT, ACCESS_DATA, FLAGS_FLAT32);
  const tss = encodeDescriptor(0, TSS_LIMIT, ACCESS_TSS_BUSY, FLAGS_BYTE_GRANULAR);
  // Slot 5 is the upper half of the 16-byte TSS descriptor: base bits 63:32, all zero here.
  const table = [0n, code32, code64, data, tss, 0n];
  const bytes = new Uint8Array(table.length * 8);
  const view = new DataView(bytes.buffer);
  table.forEach((d, i) => view.setBigUint64(i * 8, d, true));
  mem.write(BOOT_GDT_ADDR, bytes);
  mem.fill(BOOT_IDT_ADDR, BOOT_IDT_SIZE, 0);
  return {
    gdt: { base: BOOT_GDT_ADDR, limit: bytes.length - 1 },
    idt: { base: BOOT_IDT_ADDR, limit: BOOT_IDT_SIZE - 1 },
    code32: decodeDescriptor(code32, BOOT_CS32_SELECTOR),
    code64: decodeDescriptor(code64, BOOT_CS64_SELECTOR),
    data: decodeDescriptor(data, BOOT_DS_SELECTOR),
    tss: decodeDescriptor(tss, BOOT_TSS_SELECTOR),
  };
}
