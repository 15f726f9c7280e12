/**
 * The shared register files of a VM's devices (src/devices/shared-state.ts): allocated here, on the thread that builds
 * the VM, and handed to the device thread, which owns the devices, and to every vCPU thread, which serves register
 * accesses where the exit happens.
 */
import { Serial16550 } from "../devices/legacy/serial.js";
import { I8042 } from "../devices/legacy/i8042.js";
import { CmosRtc } from "../devices/legacy/rtc.js";
import type { LogSettings } from "./logger.js";
import type { UserDeviceSpec } from "./device-thread/user-devices.js";
import type { MemoryRegionDescriptor } from "../memory/guest-memory.js";

export interface LegacyStates {
  serial: SharedArrayBuffer;
  i8042: SharedArrayBuffer;
  rtc: SharedArrayBuffer;
}

/** Fresh (reset) register files for the PC devices. */
export function newLegacyStates(): LegacyStates {
  return { serial: Serial16550.newState(), i8042: I8042.newState(), rtc: CmosRtc.newState() };
}

/** What a vCPU thread needs to serve registers itself. */
export interface VcpuRegisterData {
  /** For KVM_IRQ_LINE: the UART and the i8042 drive their lines from whichever thread changes them. */
  vmFd: number;
  legacy: LegacyStates;
  /** Each virtio-mmio transport: its window's base, its register file and its name in log lines. */
  virtio: { base: number; state: SharedArrayBuffer; name: string }[];
  /** Where the UART's transmitted bytes go (null: nowhere). */
  serialOutputFd: number | null;
  log: LogSettings;
  /** The user's devices that keep their state in shared memory (UserDeviceSpec.shared), made on this thread too. */
  userDevices: UserDeviceSpec[];
  /** Guest RAM, for those devices' DMA (empty when there are none). */
  memory: MemoryRegionDescriptor[];
  /** When dirty pages are tracked: the record their DMA marks too (a Diff snapshot must hold what they wrote). */
  dirtyPages?: SharedArrayBuffer[];
}
