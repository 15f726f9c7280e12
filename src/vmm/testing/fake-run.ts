/** A kvm_run stand-in for tests of exit handling without KVM: one exit at a time, its fields set by the test. */
import { EXIT, IO_IN, IO_OUT, type KvmRunView } from "../../kvm/run.js";

export class FakeRun {
  exitReason: number = EXIT.MMIO;
  mmioAddr = 0;
  mmioLen = 4;
  mmioIsWrite = true;
  ioDirection = IO_OUT;
  ioPort = 0;
  ioSize = 1;
  ioCount = 1;
  readonly data = new Uint8Array(8);
  mmioData(): Uint8Array { return this.data.subarray(0, this.mmioLen); }
  ioData(): Uint8Array { return this.data.subarray(0, this.ioSize * this.ioCount); }

  /** This exit as the KvmRunView the code under test takes. */
  get view(): KvmRunView {
    return this as unknown as KvmRunView;
  }

  /** A one-byte port access (an OUT carries `byte`). */
  pio(port: number, out: boolean, byte = 0): KvmRunView {
    Object.assign(this, { exitReason: EXIT.IO, ioPort: port, ioDirection: out ? IO_OUT : IO_IN, ioSize: 1, ioCount: 1 });
    this.data[0] = byte;
    return this.view;
  }

  /** A 4-byte MMIO access (a write carries `value`). */
  mmio(addr: number, write: boolean, value = 0): KvmRunView {
    Object.assign(this, { exitReason: EXIT.MMIO, mmioAddr: addr, mmioIsWrite: write, mmioLen: 4 });
    new DataView(this.data.buffer).setUint32(0, value, true);
    return this.view;
  }

  /** The first four data bytes as a little-endian value (what a read left there). */
  get u32(): number {
    return new DataView(this.data.buffer).getUint32(0, true);
  }
}
