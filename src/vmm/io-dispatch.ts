/**
 * Serving one KVM_EXIT_IO or KVM_EXIT_MMIO from a bus, in place in kvm_run. A string instruction (rep ins/outs)
 * arrives as `count` accesses of `size` bytes. An access no device claims reads as all ones, like an open bus.
 */
import { IO_OUT, type KvmRunView } from "../kvm/run.js";
import type { Bus } from "../devices/bus.js";

/** Returns false when some access was not claimed by any device. */
export function dispatchPio(run: KvmRunView, bus: Bus): boolean {
  const size = run.ioSize;
  const port = run.ioPort;
  const out = run.ioDirection === IO_OUT;
  const data = run.ioData();
  let claimedAll = true;
  for (let at = 0; at < data.length; at += size) {
    const chunk = data.length === size ? data : data.subarray(at, at + size);
    const claimed = out ? bus.write(port, chunk) : bus.read(port, chunk);
    if (!claimed) {
      if (!out) chunk.fill(0xff);
      claimedAll = false;
    }
  }
  return claimedAll;
}

/** Returns false when no device claims the address. */
export function dispatchMmio(run: KvmRunView, bus: Bus): boolean {
  const data = run.mmioData();
  const claimed = run.mmioIsWrite ? bus.write(run.mmioAddr, data) : bus.read(run.mmioAddr, data);
  if (!claimed && !run.mmioIsWrite) data.fill(0xff);
  return claimed;
}
