/** A zeroed native buffer for one KVM struct (plus trailing array space), with accessors by field name. */
import type { StructLayout } from "./structs.js";

export class CStruct<F extends string> {
  readonly bytes: Uint8Array;
  readonly view: DataView;

  /** `extra` bytes follow the fixed part, for flexible array members (cpuid entries, msr entries). */
  constructor(readonly layout: StructLayout<F>, extra = 0) {
    this.bytes = new Uint8Array(layout.size + extra);
    this.view = new DataView(this.bytes.buffer);
  }

  private at(field: F, delta: number): number {
    return this.layout.offsets[field] + delta;
  }

  u8(field: F, delta = 0): number { return this.view.getUint8(this.at(field, delta)); }
  u16(field: F, delta = 0): number { return this.view.getUint16(this.at(field, delta), true); }
  u32(field: F, delta = 0): number { return this.view.getUint32(this.at(field, delta), true); }
  u64(field: F, delta = 0): bigint { return this.view.getBigUint64(this.at(field, delta), true); }
  setU8(field: F, v: number, delta = 0): void { this.view.setUint8(this.at(field, delta), v); }
  setU16(field: F, v: number, delta = 0): void { this.view.setUint16(this.at(field, delta), v, true); }
  setU32(field: F, v: number, delta = 0): void { this.view.setUint32(this.at(field, delta), v >>> 0, true); }
  setU64(field: F, v: bigint | number, delta = 0): void { this.view.setBigUint64(this.at(field, delta), BigInt(v), true); }
}
