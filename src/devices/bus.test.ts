import { test } from "node:test";
import assert from "node:assert/strict";
import { Bus, BusError, type BusDevice } from "./bus.js";

class Recorder implements BusDevice {
  readonly seen: string[] = [];
  read(offset: number, data: Uint8Array): void { this.seen.push(`r${offset}`); data.fill(offset); }
  write(offset: number, data: Uint8Array): void { this.seen.push(`w${offset}:${data[0]}`); }
}

test("dispatches to the device that claims the address, with the offset into its range", () => {
  const bus = new Bus("pio");
  const a = new Recorder();
  const b = new Recorder();
  bus.insert(b, 0x3f8, 8, "b");
  bus.insert(a, 0x60, 5, "a");
  const d = new Uint8Array(1);
  assert.equal(bus.read(0x3fa, d), true);
  assert.equal(d[0], 2);
  assert.equal(bus.write(0x64, Uint8Array.of(0xfe)), true);
  assert.deepEqual(a.seen, ["w4:254"]);
  assert.deepEqual(b.seen, ["r2"]);
  assert.equal(bus.read(0x65, d), false);
  assert.equal(bus.write(0x3f7, d), false);
});

test("overlapping or invalid registrations are refused, naming both devices", () => {
  const bus = new Bus("mmio");
  bus.insert(new Recorder(), 0x1000, 0x1000, "first");
  assert.throws(() => bus.insert(new Recorder(), 0x1fff, 2, "second"), (e: Error) => e instanceof BusError && /second.*overlaps first/.test(e.message));
  assert.throws(() => bus.insert(new Recorder(), 0x500, 0xb01, "third"), BusError);
  assert.throws(() => bus.insert(new Recorder(), 0x5000, 0, "empty"), BusError);
  bus.insert(new Recorder(), 0x2000, 1, "adjacent");
});
