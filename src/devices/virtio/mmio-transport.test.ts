import { test } from "node:test";
import assert from "node:assert/strict";
import { GuestMemory } from "../../memory/guest-memory.js";
import { VIRTIO_F_VERSION_1, type ActivateContext, type VirtioDevice } from "./device.js";
import {
  INTERRUPT_CONFIG_CHANGE, INTERRUPT_USED_BUFFER, MMIO_DEVICE_WINDOW, MmioTransport, STATUS_DEVICE_NEEDS_RESET, STATUS_FAILED,
  virtioMmioCmdlineEntry,
} from "./mmio-transport.js";
import { CountingInterrupt, FakeMmioDriver, FakeVirtqueue } from "./testing/fake-driver.js";

/** A device that records what the transport asks of it and echoes each chain back. */
class RecordingDevice implements VirtioDevice {
  readonly deviceType = 42;
  readonly features = VIRTIO_F_VERSION_1 | (1n << 3n);
  readonly queueMaxSizes = [8, 16];
  ctx: ActivateContext | null = null;
  processed: number[] = [];
  resets = 0;
  failActivation = false;
  readConfig(offset: number, data: Uint8Array): void {
    data.forEach((_, i) => { data[i] = (offset + i) & 0xff; });
  }
  writeConfig(): void {}
  activate(ctx: ActivateContext): void {
    if (this.failActivation) throw new Error("backend gone");
    this.ctx = ctx;
  }
  processQueue(index: number): void {
    this.processed.push(index);
    const q = this.ctx!.queues[index];
    for (let c = q.pop(); c; c = q.pop()) q.addUsed(c.head, 0);
    if (q.needsNotification()) this.ctx!.interrupt();
  }
  reset(): void {
    this.resets++;
    this.ctx = null;
  }
}

function setup() {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: 0x20000 }]);
  const device = new RecordingDevice();
  const irq = new CountingInterrupt();
  const transport = new MmioTransport(device, { mem, interrupt: irq });
  const driver = new FakeMmioDriver(transport);
  const queues = [new FakeVirtqueue(mem, 8, 0x1000), new FakeVirtqueue(mem, 16, 0x2000)];
  return { mem, device, irq, transport, driver, queues };
}

test("identification registers and config space", () => {
  const { driver, transport } = setup();
  assert.equal(driver.read(0x000), 0x74726976);
  assert.equal(driver.read(0x004), 2);
  assert.equal(driver.read(0x008), 42);
  assert.equal(driver.offeredFeatures(), VIRTIO_F_VERSION_1 | (1n << 3n));
  driver.write(0x030, 1);
  assert.equal(driver.read(0x034), 16);
  driver.write(0x030, 2);
  assert.equal(driver.read(0x034), 0, "queues past the device's are unavailable");
  const cfg = new Uint8Array(2);
  transport.read(0x104, cfg);
  assert.deepEqual([...cfg], [4, 5]);
  assert.equal(MMIO_DEVICE_WINDOW, 0x1000);
  assert.equal(virtioMmioCmdlineEntry(0xd000_0000, 5), "virtio_mmio.device=4K@0xd0000000:5");
});

test("full initialization activates the device; notifies reach processQueue", () => {
  const { device, driver, transport, queues, irq } = setup();
  assert.equal(driver.initialize(queues), 0xf);
  assert.ok(device.ctx);
  assert.equal(device.ctx.queues.length, 2);
  queues[1].addChain([{ addr: 0x8000, len: 4 }]);
  driver.write(0x050, 1); // QueueNotify by MMIO exit
  transport.notify(1); // the same through the ioeventfd path
  assert.deepEqual(device.processed, [1, 1]);
  assert.equal(queues[1].takeUsed().length, 1);
  assert.equal(irq.triggers, 1);
  assert.equal(driver.read(0x060), INTERRUPT_USED_BUFFER);
  driver.write(0x064, INTERRUPT_USED_BUFFER);
  assert.equal(driver.read(0x060), 0);
});

test("FEATURES_OK is refused for unoffered features or without VERSION_1", () => {
  const a = setup();
  assert.equal(a.driver.initialize(a.queues, VIRTIO_F_VERSION_1 | (1n << 4n)) & 8, 0);
  const b = setup();
  assert.equal(b.driver.initialize(b.queues, 1n << 3n) & 8, 0);
  assert.equal(b.device.ctx, null);
});

test("status only moves one legal step at a time; FAILED sticks until reset", () => {
  const { driver, device, queues } = setup();
  driver.write(0x070, 1);
  driver.write(0x070, 1 | 2 | 4); // skips FEATURES_OK
  assert.equal(driver.read(0x070), 1);
  driver.write(0x070, 0x80);
  assert.equal(driver.read(0x070), 1 | STATUS_FAILED);
  driver.write(0x070, 3);
  assert.equal(driver.read(0x070), 1 | STATUS_FAILED);
  driver.write(0x070, 0);
  assert.equal(driver.read(0x070), 0);
  assert.equal(driver.initialize(queues), 0xf);
  driver.write(0x070, 0);
  assert.equal(device.resets, 1);
  assert.equal(driver.read(0x044), 0, "reset clears queue state");
});

test("queue registers are only writable between FEATURES_OK and DRIVER_OK, while not ready", () => {
  const { driver, transport } = setup();
  driver.write(0x038, 8); // before FEATURES_OK
  assert.equal(driver.read(0x038), 0);
  driver.write(0x070, 1);
  driver.write(0x070, 3);
  driver.write(0x024, 1);
  driver.write(0x020, 1);
  driver.write(0x070, 0xb);
  driver.write(0x038, 8);
  assert.equal(driver.read(0x038), 8);
  driver.write(0x044, 1);
  driver.write(0x038, 4); // queue is ready now
  assert.equal(driver.read(0x038), 8);
  assert.ok(transport.metrics.invalidAccesses >= 2);
});

test("registers need 32-bit aligned access", () => {
  const { transport } = setup();
  const narrow = new Uint8Array(2);
  transport.read(0x000, narrow);
  assert.deepEqual([...narrow], [0, 0]);
  transport.write(0x070, Uint8Array.of(1, 0));
  assert.equal(transport.deviceStatus, 0);
});

test("a failed activation sets DEVICE_NEEDS_RESET and raises a config interrupt", () => {
  const { device, driver, queues, irq } = setup();
  device.failActivation = true;
  const status = driver.initialize(queues);
  assert.ok(status & STATUS_DEVICE_NEEDS_RESET);
  assert.equal(driver.read(0x060), INTERRUPT_CONFIG_CHANGE);
  assert.equal(irq.triggers, 1);
});

test("a queue the driver left unready or out of RAM fails activation", () => {
  const { mem, device, transport, queues } = setup();
  const bad = new FakeVirtqueue(mem, 8, 0x1ff80); // runs past the end of RAM
  assert.ok(new FakeMmioDriver(transport).initialize([queues[0], bad]) & STATUS_DEVICE_NEEDS_RESET);
  assert.equal(device.ctx, null);
});

test("a broken ring fails only this device until the driver resets it", () => {
  const { mem, device, driver, transport, queues, irq } = setup();
  driver.initialize(queues);
  queues[0].setAvailIdx(100);
  transport.notify(0);
  assert.ok(driver.read(0x070) & STATUS_DEVICE_NEEDS_RESET);
  assert.equal(transport.metrics.deviceFailures, 1);
  assert.equal(irq.triggers, 1);
  transport.notify(0);
  assert.deepEqual(device.processed, [0], "no processing while the device needs a reset");
  driver.write(0x070, 0);
  const fresh = [new FakeVirtqueue(mem, 8, 0x4000), new FakeVirtqueue(mem, 16, 0x5000)];
  assert.equal(driver.initialize(fresh), 0xf);
});

test("a flood of bad register writes gives a bounded number of log lines (rate limited per call site)", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: 0x10000 }]);
  const lines: string[] = [];
  const transport = new MmioTransport(new RecordingDevice(), { mem, interrupt: new CountingInterrupt(), logger: (_l, m) => lines.push(m) });
  const word = new Uint8Array(4);
  for (let i = 0; i < 100_000; i++) transport.write(0x0fc, word); // an unknown register
  assert.equal(transport.metrics.invalidAccesses, 100_000, "every bad access is still counted");
  assert.ok(lines.length <= 20, `${lines.length} log lines for 100,000 bad writes`);
});
