/**
 * The mmap'd struct kvm_run of one vCPU, read in place (zero copy) by whichever thread handles its exits.
 * Exit reasons and layouts: <linux/kvm.h>, api.rst section 5.
 */
import { view } from "../sys/libc.js";
import { kvmRun } from "./structs.js";

export const EXIT = {
  UNKNOWN: 0,
  EXCEPTION: 1,
  IO: 2,
  HYPERCALL: 3,
  DEBUG: 4,
  HLT: 5,
  MMIO: 6,
  IRQ_WINDOW_OPEN: 7,
  SHUTDOWN: 8,
  FAIL_ENTRY: 9,
  INTR: 10,
  NMI: 16,
  INTERNAL_ERROR: 17,
  SYSTEM_EVENT: 24,
} as const;

export const EXIT_NAMES: Record<number, string> = Object.fromEntries(Object.entries(EXIT).map(([k, v]) => [v, k]));

export const IO_IN = 0;
export const IO_OUT = 1;

const o = kvmRun.offsets;

export class KvmRunView {
  readonly bytes: Uint8Array;
  private readonly dv: DataView;
  private lastIoData?: Uint8Array;
  private readonly mmioViews: (Uint8Array | undefined)[] = [];

  constructor(runAddr: bigint, mmapSize: number) {
    this.bytes = new Uint8Array(view(runAddr, mmapSize));
    this.dv = new DataView(this.bytes.buffer, this.bytes.byteOffset, mmapSize);
  }

  get exitReason(): number { return this.dv.getUint32(o.exit_reason, true); }
  set immediateExit(on: boolean) { this.dv.setUint8(o.immediate_exit, on ? 1 : 0); }
  get immediateExit(): boolean { return this.dv.getUint8(o.immediate_exit) !== 0; }

  get ioDirection(): number { return this.dv.getUint8(o["io.direction"]); }
  get ioSize(): number { return this.dv.getUint8(o["io.size"]); }
  get ioPort(): number { return this.dv.getUint16(o["io.port"], true); }
  get ioCount(): number { return this.dv.getUint32(o["io.count"], true); }
  /**
   * The PIO data bytes (size * count), inside the mmap'd area (the second page). The view is reused while offset
   * and length stay the same, as they do exit after exit: no allocation on the vCPU's hot path.
   */
  ioData(): Uint8Array {
    // data_offset is a u64 but points inside this small mapping: its low half is the whole value.
    const off = this.dv.getUint32(o["io.data_offset"], true);
    const end = off + this.ioSize * this.ioCount;
    const last = this.lastIoData;
    if (last && last.byteOffset === this.bytes.byteOffset + off && last.length === end - off) return last;
    return (this.lastIoData = this.bytes.subarray(off, end));
  }

  /** Below 2^53, as guest physical addresses are; read as two halves (a BigInt would be allocated per exit). */
  get mmioAddr(): number {
    return this.dv.getUint32(o["mmio.phys_addr"] + 4, true) * 0x1_0000_0000 + this.dv.getUint32(o["mmio.phys_addr"], true);
  }
  get mmioLen(): number { return this.dv.getUint32(o["mmio.len"], true); }
  get mmioIsWrite(): boolean { return this.dv.getUint8(o["mmio.is_write"]) !== 0; }
  /** The MMIO data bytes (len, at most 8), one reused view per length. */
  mmioData(): Uint8Array {
    const len = Math.min(8, this.mmioLen);
    return (this.mmioViews[len] ??= this.bytes.subarray(o["mmio.data"], o["mmio.data"] + len));
  }

  get failEntryReason(): bigint { return this.dv.getBigUint64(o["fail_entry.hardware_entry_failure_reason"], true); }
  get internalSuberror(): number { return this.dv.getUint32(o["internal.suberror"], true); }
  internalData(): bigint[] {
    const n = Math.min(16, this.dv.getUint32(o["internal.ndata"], true));
    return Array.from({ length: n }, (_, i) => this.dv.getBigUint64(o["internal.data"] + i * 8, true));
  }
  get systemEventType(): number { return this.dv.getUint32(o["system_event.type"], true); }
}
