import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, openSync, readFileSync, closeSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { FakeRun } from "../testing/fake-run.js";
import { MmioTransport, VIRTIO_MMIO_QUEUE_NOTIFY } from "../../devices/virtio/mmio-transport.js";
import { Serial16550 } from "../../devices/legacy/serial.js";
import { COMMON_FEATURES, type VirtioDevice } from "../../devices/virtio/device.js";
import type { GuestMemory } from "../../memory/guest-memory.js";
import { newLegacyStates } from "../register-states.js";
import { VcpuRegisters } from "./registers.js";
import { newSharedUserDevice } from "../device-thread/user-devices.js";

/** A device with a recognisable config space and two queues; activation is the owner's alone. */
const device: VirtioDevice = {
  deviceType: 42, features: COMMON_FEATURES | 0x5n, queueMaxSizes: [128, 64],
  readConfig(offset, data) { data.forEach((_, i) => { data[i] = (offset + i) & 0xff; }); },
  writeConfig() {}, activate() {}, processQueue() {}, reset() {},
};

const BASE = 0xd000_0000;

function setup() {
  const dir = mkdtempSync(path.join(tmpdir(), "petasan-registers-"));
  const outPath = path.join(dir, "serial");
  const outFd = openSync(outPath, "w");
  const legacy = newLegacyStates();
  const virtioState = MmioTransport.newState();
  // The owner first (the device thread fills in what the device offers), then a vCPU thread's view.
  const owner = new MmioTransport(device, { mem: {} as GuestMemory, interrupt: { setLevel() {}, trigger() {} }, state: virtioState });
  const registers = new VcpuRegisters(
    { vmFd: -1, legacy, virtio: [{ base: BASE, state: virtioState, name: "virtio-test" }], serialOutputFd: outFd, log: { fd: 2, level: "Error" }, userDevices: [], memory: [] },
    "vcpu0", { onReset: () => {}, userDevices: [] },
  );
  return { registers, owner, legacy, run: new FakeRun(), output: () => readFileSync(outPath, "latin1"), close: () => closeSync(outFd) };
}

test("UART registers are served on the vCPU thread, over the state the device thread owns", () => {
  const { registers, legacy, run, output, close } = setup();
  try {
    assert.equal(registers.servePio(run.pio(0x3ff, true, 0x5a)), true, "scratch write served here");
    assert.equal(registers.servePio(run.pio(0x3ff, false)), true);
    assert.equal(run.data[0], 0x5a);
    assert.equal(registers.servePio(run.pio(0x3f8, true, "A".charCodeAt(0))), true, "THR write served here");
    assert.equal(output(), "A", "the byte went straight to the console fd");
    // The device thread's instance over the same state sees what the vCPU did.
    const owner = new Serial16550({ irq: { setLevel() {}, trigger() {} }, output() {}, state: legacy.serial });
    assert.equal((owner.saveState() as { scr: number }).scr, 0x5a);
    assert.equal(owner.metrics.txBytes, 1);
    assert.equal(registers.servePio(run.pio(0x80, true)), true, "the io_delay port is here too");
    assert.equal(registers.servePio(run.pio(0x1234, true)), false, "a port no device here owns goes to the device thread");
  } finally {
    close();
  }
});

test("virtio-mmio registers are served here; writes that start, stop or feed the data path are handed over", () => {
  const { registers, owner, run, close } = setup();
  try {
    assert.equal(registers.serveMmio(run.mmio(BASE + 0x000, false)), true);
    assert.equal(run.u32, 0x74726976, "MagicValue");
    assert.equal(registers.serveMmio(run.mmio(BASE + 0x008, false)), true);
    assert.equal(run.u32, 42, "DeviceID, from what the owner described");
    assert.equal(registers.serveMmio(run.mmio(BASE + 0x010, false)), true);
    assert.equal(run.u32, 0x3000_0005, "DeviceFeatures word 0");
    assert.equal(registers.serveMmio(run.mmio(BASE + 0x104, false)), true);
    assert.equal(run.u32, 0x07060504, "config space, from the mirror");
    // The driver's handshake up to FEATURES_OK is served here; the owner sees the state it leaves.
    for (const status of [1, 3]) assert.equal(registers.serveMmio(run.mmio(BASE + 0x070, true, status)), true);
    assert.equal(registers.serveMmio(run.mmio(BASE + 0x024, true, 1)), true, "DriverFeaturesSel");
    assert.equal(registers.serveMmio(run.mmio(BASE + 0x020, true, 1)), true, "DriverFeatures: VERSION_1");
    assert.equal(registers.serveMmio(run.mmio(BASE + 0x070, true, 0xb)), true, "FEATURES_OK");
    assert.equal(owner.deviceStatus, 0xb);
    assert.equal(registers.serveMmio(run.mmio(BASE + 0x030, true, 1)), true, "QueueSel");
    assert.equal(registers.serveMmio(run.mmio(BASE + 0x034, false)), true);
    assert.equal(run.u32, 64, "QueueNumMax of queue 1");
    // Handed over: DRIVER_OK (activation), reset, a QueueNotify no ioeventfd took, config writes.
    assert.equal(registers.serveMmio(run.mmio(BASE + 0x070, true, 0xf)), false);
    assert.equal(registers.serveMmio(run.mmio(BASE + 0x070, true, 0)), false);
    assert.equal(registers.serveMmio(run.mmio(BASE + VIRTIO_MMIO_QUEUE_NOTIFY, true, 7)), false);
    assert.equal(registers.serveMmio(run.mmio(BASE + 0x100, true, 1)), false);
    assert.equal(owner.deviceStatus, 0xb, "nothing of a handed-over write was done here");
    assert.equal(registers.serveMmio(run.mmio(BASE + 0x1000, false)), false, "past the window: not this device's");
  } finally {
    close();
  }
});

test("a user's MMIO device with shared state is served here whatever it is written, virtio's hand-over rule aside", () => {
  const { legacy, run, close } = setup();
  try {
    const writes: number[] = [];
    const userDevices = [{
      spec: { module: "file:///dev.js", bus: "mmio" as const, base: 0xc000_0000, length: 0x1000, name: "dev", shared: newSharedUserDevice(4) },
      factory: () => ({ read(_o: number, d: Uint8Array) { d.fill(0); }, write(o: number) { writes.push(o); } }),
    }];
    const registers = new VcpuRegisters(
      { vmFd: -1, legacy, virtio: [], serialOutputFd: null, log: { fd: 2, level: "Error" }, userDevices: userDevices.map((u) => u.spec), memory: [] },
      "vcpu0", { onReset: () => {}, userDevices },
    );
    // Offsets where a virtio-mmio transport would hand the write over (Status 0, QueueNotify, config space).
    for (const offset of [0x070, 0x050, 0x100]) assert.equal(registers.serveMmio(run.mmio(0xc000_0000 + offset, true, 0)), true);
    assert.deepEqual(writes, [0x070, 0x050, 0x100]);
  } finally {
    close();
  }
});
