// A device written in TypeScript, loaded by petasan onto the thread that runs the VM's devices (and, as its state is
// shared, onto each vCPU thread). Its module's default export makes it; the guest's port I/O in its range calls read
// and write with offsets into it.
//   base + 0, 32-bit: a write adds the value to the sum; a read returns the sum.
//   base + 4, 32-bit: a write gives the guest-physical address of a NUL-terminated string, which the
//                     device uppercases in guest memory (DMA through context.memory).
//   base + 8:         a write raises the device's interrupt (context.irq, when the VM gave it one).
// saveState/restoreState make a VM with it snapshottable: the sum is the device's only state.
import type { UserDeviceFactory } from "petasan";

const MAX_STRING = 256;

const createSumDevice: UserDeviceFactory<{ start?: number }> = (context) => {
  // The sum lives in shared memory when the VM gave the device some (sharedStateBytes): then every vCPU thread
  // makes this device too and serves its ports where the exit happens, and only the first one sets the sum up.
  const state = new Uint32Array(context.shared ?? new ArrayBuffer(4), 0, 1);
  if (context.first) state[0] = context.options?.start ?? 0;
  return {
    read(offset, data) {
      data.fill(0);
      if (offset === 0 && data.length === 4) new DataView(data.buffer, data.byteOffset, 4).setUint32(0, state[0], true);
    },
    write(offset, data) {
      if (data.length !== 4) return;
      const value = new DataView(data.buffer, data.byteOffset, 4).getUint32(0, true);
      if (offset === 0) state[0] = (state[0] + value) >>> 0;
      else if (offset === 4) uppercase(value);
      else if (offset === 8) context.irq?.trigger();
    },
    // The device thread's instance is asked, on a paused VM; the state it restores is the shared one.
    saveState: () => ({ sum: state[0] }),
    restoreState(saved) {
      const value = (saved as { sum?: unknown } | null)?.sum;
      if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 0xffff_ffff) throw new Error("saved sum is not a 32-bit value");
      state[0] = value;
    },
  };

  function uppercase(addr: number): void {
    const text = context.memory.read(addr, MAX_STRING);
    const end = text.indexOf(0);
    if (end < 0) return context.log("Warning", `no string end within ${MAX_STRING} bytes at 0x${addr.toString(16)}`);
    const upper = new TextEncoder().encode(new TextDecoder().decode(text.subarray(0, end)).toUpperCase());
    if (upper.length === end) context.memory.write(addr, upper);
  }
};

export default createSumDevice;
