/**
 * Device registers served on the vCPU thread that exited: no wake-up of another thread per access, which on a
 * nested host costs ~130 µs against a ~15 µs exit and on a VT-x host many times an exit (issue 8). Every device on
 * the buses is here over the same shared register file the device thread owns (src/devices/shared-state.ts): COM1,
 * the i8042, the RTC, the io_delay ports and each virtio-mmio transport. What stays with the device thread, as a
 * synchronous hand-over (VcpuControl.postExitAndWait): the virtio writes that start, stop or feed the data path
 * (mmioWriteNeedsDevice: DRIVER_OK, reset, config space, a QueueNotify no ioeventfd matched), the user's own
 * devices unless they keep their state in shared memory (UserDeviceSpec.shared: then they are made here too), and
 * addresses nothing claims (logged there, rate limited).
 */
import { Bus } from "../../devices/bus.js";
import { PortSink, POST_CODE_PORT, ALTERNATE_IO_DELAY_PORT } from "../../devices/legacy/sink.js";
import { MMIO_DEVICE_WINDOW, MmioTransport, SharedDeviceInfo, mmioWriteNeedsDevice } from "../../devices/virtio/mmio-transport.js";
import { Vm } from "../../kvm/vm.js";
import type { KvmRunView } from "../../kvm/run.js";
import { dispatchPio } from "../io-dispatch.js";
import { attachLegacyDevices } from "../device-thread/legacy-devices.js";
import { virtioLogger } from "../virtio-log.js";
import { createLogger, type Logger } from "../logger.js";
import { serialSink } from "../serial-sink.js";
import type { VcpuRegisterData } from "../register-states.js";
import type { GuestMemory } from "../../memory/guest-memory.js";
import { guestMemoryOver } from "../../memory/host-mapping.js";
import { attachUserDevices, type LoadedUserDevice } from "../device-thread/user-devices.js";
import { kvmLevelLine } from "../device-thread/irq-line.js";

export class VcpuRegisters {
  private readonly pio = new Bus("pio");
  private readonly mmio = new Bus("mmio");

  /**
   * `onReset`: the guest pulsed the reset line through the i8042 (on this thread); `userDevices`: the user's devices
   * with shared state (data.userDevices), their modules loaded on this thread.
   */
  constructor(data: VcpuRegisterData, origin: string, { onReset, userDevices }: { onReset: () => void; userDevices: readonly LoadedUserDevice[] }) {
    const log: Logger = createLogger({ ...data.log, origin });
    const vm = new Vm(data.vmFd, 0);
    attachLegacyDevices(this.pio, vm, data.legacy, { serialOutput: serialSink(data.serialOutputFd, log), onReset });
    // Linux's io_delay writes to port 0x80 after many PIC/PIT accesses: stateless, answered here.
    this.pio.insert(new PortSink(), POST_CODE_PORT, 1, "POST code / io_delay port");
    this.pio.insert(new PortSink(), ALTERNATE_IO_DELAY_PORT, 1, "alternate io_delay port");
    const virtioLog = virtioLogger(log);
    for (const v of data.virtio) {
      // Guest memory and the interrupt are the owner's business (activation, used buffers): never reached here.
      const transport = new MmioTransport(new SharedDeviceInfo(v.state), {
        mem: undefined as unknown as GuestMemory, interrupt: { setLevel() {}, trigger() {} }, logger: virtioLog, state: v.state, name: v.name,
      });
      this.mmio.insert(transport, v.base, MMIO_DEVICE_WINDOW, `virtio-mmio@0x${v.base.toString(16)}`);
    }
    // Made again over the state the device thread's instance set up (its factory ran first, as the VM started).
    const memory = guestMemoryOver(data.memory);
    if (data.dirtyPages && data.memory.length > 0) memory.trackDirtyPages(data.dirtyPages);
    attachUserDevices(userDevices, {
      pio: this.pio, mmio: this.mmio, memory, log, irqLine: (gsi) => kvmLevelLine(vm, gsi), takenGsis: new Set(), again: true,
    });
  }

  /** Serves a KVM_EXIT_IO here if a device of this thread owns the port; false: the device thread's to serve. */
  servePio(run: KvmRunView): boolean {
    if (!this.pio.range(run.ioPort)) return false;
    dispatchPio(run, this.pio);
    return true;
  }

  /** Serves a KVM_EXIT_MMIO here unless nothing here owns the address or the write is the device owner's. */
  serveMmio(run: KvmRunView): boolean {
    const addr = run.mmioAddr;
    const r = this.mmio.range(addr);
    if (!r) return false;
    const data = run.mmioData();
    if (run.mmioIsWrite) {
      // The virtio-mmio rule, for transports only: a user's device with shared state serves every write here.
      if (r.device instanceof MmioTransport && mmioWriteNeedsDevice(addr - r.base, data)) return false;
      r.device.write(addr - r.base, data);
    } else {
      r.device.read(addr - r.base, data);
    }
    return true;
  }
}
