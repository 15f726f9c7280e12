import { test } from "node:test";
import assert from "node:assert/strict";
import { Serial16550 } from "../../devices/legacy/serial.js";
import { I8042 } from "../../devices/legacy/i8042.js";
import { CmosRtc } from "../../devices/legacy/rtc.js";
import { restoreUserDevices, saveDevices } from "./snapshot.js";
import { newSharedUserDevice, type AttachedUserDevice } from "./user-devices.js";

const legacy = () => ({
  serial: new Serial16550({ irq: { setLevel() {}, trigger() {} }, output() {} }),
  i8042: new I8042({ onReset() {} }),
  rtc: new CmosRtc({ clock: () => new Date(0) }),
});

/** A user bus device with `bytes` of shared state and no saveState(): its state is those bytes alone. */
function sharedDevice(bytes: number): AttachedUserDevice & { state: Uint8Array } {
  const shared = newSharedUserDevice(bytes);
  return {
    spec: { name: "sum", module: "file:///sum.js", bus: "pio", base: 0x700, length: 12, shared },
    metrics: { reads: 0, writes: 0, failures: 0 },
    device: { read() {}, write() {} },
    state: new Uint8Array(shared.state),
  };
}

test("a user device with shared state needs no saveState(): petasan saves and restores its bytes", () => {
  const before = sharedDevice(8);
  before.state.set([1, 2, 3, 4, 5, 6, 7, 8]);
  const saved = saveDevices(legacy(), [], [before]);
  const after = sharedDevice(8);
  restoreUserDevices(saved.user, [after]);
  assert.deepEqual([...after.state], [1, 2, 3, 4, 5, 6, 7, 8]);

  assert.throws(() => restoreUserDevices(saved.user, [sharedDevice(4)]), /device sum: the snapshot holds 8 bytes of shared state; it is given 4/);
  const plain = { ...sharedDevice(8), spec: { ...before.spec, shared: undefined }, device: { read() {}, write() {}, restoreState() {} } };
  assert.throws(() => restoreUserDevices(saved.user, [plain]), /device sum: the snapshot was taken with shared state \(sharedStateBytes\); the restored VM gives it none/);
});
