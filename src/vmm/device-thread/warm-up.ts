/**
 * What a warm device thread runs while it waits for its job (job-data.ts): the code a restore runs first on this
 * thread, on throwaway objects, so that V8 has compiled it before a PUT /snapshot/load arrives. The PC devices and a
 * virtio-mmio transport are made over fresh register files, take a few register accesses, and their states are
 * saved and put back through restoreDevices, as a restore does. No KVM, no file descriptor, nothing kept.
 */
import { newLegacyStates } from "../register-states.js";
import { Serial16550 } from "../../devices/legacy/serial.js";
import { I8042 } from "../../devices/legacy/i8042.js";
import { CmosRtc } from "../../devices/legacy/rtc.js";
import { MmioTransport } from "../../devices/virtio/mmio-transport.js";
import { COMMON_FEATURES, readConfigBytes, type VirtioDevice } from "../../devices/virtio/device.js";
import type { GuestMemory } from "../../memory/guest-memory.js";
import { restoreDevices } from "./snapshot.js";
import type { LegacyDevices } from "./legacy-devices.js";
import type { AttachedVirtioDevice } from "./virtio-devices.js";

const noIrq = { setLevel() {}, trigger() {} };
const BASE = 0xd000_0000;

/** A device with one queue and an 8-byte config space, never activated. */
function sampleDevice(): VirtioDevice {
  const config = new Uint8Array(8);
  return {
    deviceType: 4, features: COMMON_FEATURES, queueMaxSizes: [256],
    readConfig: (offset, data) => readConfigBytes(config, offset, data), writeConfig() {}, activate() {}, processQueue() {}, reset() {},
  };
}

function sampleVm(): { legacy: LegacyDevices; virtio: AttachedVirtioDevice[] } {
  const states = newLegacyStates();
  const legacy = {
    serial: new Serial16550({ irq: noIrq, output() {}, state: states.serial }),
    i8042: new I8042({ onReset() {}, kbdIrq: noIrq, state: states.i8042 }),
    rtc: new CmosRtc({ clock: () => new Date(), state: states.rtc }),
  };
  const device = sampleDevice();
  const transport = new MmioTransport(device, { mem: {} as GuestMemory, interrupt: noIrq, state: MmioTransport.newState() });
  const spec = { backend: { kind: "rng", id: "warm-up" }, base: BASE, gsi: 5, irqFd: -1, queueFds: [], registers: transport.shared.buffer } as const;
  return { legacy, virtio: [{ spec: spec as unknown as AttachedVirtioDevice["spec"], device, transport, close() {}, timerFd: -1 }] };
}

export function warmUpDeviceThread(): void {
  const from = sampleVm();
  const byte = new Uint8Array(1);
  const word = new Uint8Array(4);
  from.legacy.serial.write(3, byte);
  from.legacy.serial.read(5, byte);
  from.legacy.i8042.read(4, byte);
  from.legacy.rtc.write(0, byte);
  from.legacy.rtc.read(1, byte);
  from.virtio[0].transport.read(0, word);
  from.virtio[0].transport.write(0x30, word);
  const saved = {
    serial: from.legacy.serial.saveState(), i8042: from.legacy.i8042.saveState(), rtc: from.legacy.rtc.saveState(),
    virtio: [{ kind: "rng" as const, id: "warm-up", base: BASE, gsi: 5, transport: from.virtio[0].transport.saveState() }], user: [],
  };
  const to = sampleVm();
  restoreDevices(saved, to.legacy, to.virtio);
}
