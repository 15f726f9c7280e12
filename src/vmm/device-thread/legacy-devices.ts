/** The PC legacy devices on the port-I/O bus: COM1 16550A (IRQ 4), i8042 (reset line, IRQ 1), CMOS RTC. */
import type { Bus } from "../../devices/bus.js";
import type { Vm } from "../../kvm/vm.js";
import { Serial16550, COM1_IRQ, COM1_PORT_BASE, SERIAL_PORT_COUNT } from "../../devices/legacy/serial.js";
import { I8042, I8042_KBD_IRQ, I8042_PORT_BASE, I8042_PORT_COUNT } from "../../devices/legacy/i8042.js";
import { CmosRtc, RTC_PORT_BASE, RTC_PORT_COUNT } from "../../devices/legacy/rtc.js";
import { kvmLevelLine } from "./irq-line.js";
import type { LegacyStates } from "../register-states.js";

/** GSIs the PC's own devices use: PIT (0), i8042 (1), the PIC cascade (2), COM1 (4), RTC (8). */
export const LEGACY_GSIS: readonly number[] = [0, 1, 2, COM1_IRQ, 8];

export interface LegacyDevices {
  serial: Serial16550;
  i8042: I8042;
  rtc: CmosRtc;
}

export interface LegacyWiring {
  serialOutput: (bytes: Uint8Array) => void;
  onReset: () => void;
}

/**
 * The devices over their shared register files (`states`): the device thread attaches them as their owner (host
 * input, Ctrl-Alt-Del, snapshots, accesses a vCPU passes on), each vCPU thread to serve its own exits.
 */
export function attachLegacyDevices(pio: Bus, vm: Vm, states: LegacyStates, wiring: LegacyWiring): LegacyDevices {
  const serial = new Serial16550({ irq: kvmLevelLine(vm, COM1_IRQ), output: wiring.serialOutput, state: states.serial });
  const i8042 = new I8042({ onReset: wiring.onReset, kbdIrq: kvmLevelLine(vm, I8042_KBD_IRQ), state: states.i8042 });
  const rtc = new CmosRtc({ clock: () => new Date(), state: states.rtc });
  pio.insert(serial, COM1_PORT_BASE, SERIAL_PORT_COUNT, "COM1 16550A");
  pio.insert(i8042, I8042_PORT_BASE, I8042_PORT_COUNT, "i8042");
  pio.insert(rtc, RTC_PORT_BASE, RTC_PORT_COUNT, "CMOS RTC");
  return { serial, i8042, rtc };
}
