/**
 * Places virtio devices for a VM (one path for every device kind): an MMIO window in the 32-bit hole, a
 * GSI on the in-kernel IOAPIC, an ioeventfd per queue (a queue kick never leaves the kernel for a vCPU exit)
 * and an irqfd per device (the device thread raises interrupts without a KVM ioctl). Also the kernel
 * command line entries that announce the devices to Linux (virtio_mmio.device=, as Firecracker/kvmtool do).
 */
import { close } from "../sys/libc.js";
import { newEventFd } from "../sys/eventfd.js";
import type { Vm } from "../kvm/vm.js";
import { VIRTIO_MMIO_START, VIRTIO_MMIO_END } from "../arch/x86/layout.js";
import { MMIO_DEVICE_WINDOW, MmioTransport, VIRTIO_MMIO_QUEUE_NOTIFY, virtioMmioCmdlineEntry } from "../devices/virtio/mmio-transport.js";
import type { VmConfig } from "../config/vm-config.js";
import type { VirtioDeviceSpec, VirtioBackendSpec } from "./device-thread/protocol.js";

/**
 * IOAPIC pins free for devices: 0 (PIT), 1 (i8042), 2 (cascade), 4 (COM1) and 8 (RTC) are taken and 3
 * (COM2) is left to the legacy map; KVM's IOAPIC has 24 pins (api.rst KVM_CREATE_IRQCHIP).
 */
const DEVICE_GSIS = [5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23];

/** Queues per device kind (virtio 1.2: block 5.2.2 one request queue, net 5.1.2 receiveq + transmitq, rng 5.4.2 one). */
const QUEUE_COUNT: Record<Exclude<VirtioBackendSpec["kind"], "user" | "balloon">, number> = { block: 1, net: 2, rng: 1, vsock: 3 };

/**
 * Queues of a device: the user's device says how many; the balloon's depend on its config (virtio 1.2 §5.5.2):
 * inflateq, deflateq, statsq if polled, reporting_vq.
 */
function queueCount(backend: VirtioBackendSpec): number {
  if (backend.kind === "user") return backend.queues;
  if (backend.kind !== "balloon") return QUEUE_COUNT[backend.kind];
  return 2 + (backend.statsPollingIntervalS > 0 ? 1 : 0) + (backend.freePageReporting ? 1 : 0);
}

export class DeviceManagerError extends Error {
  override readonly name = "DeviceManagerError";
}

export interface PlacedDevices {
  specs: VirtioDeviceSpec[];
  /** Kernel command line arguments announcing the devices. */
  cmdlineArgs: string[];
  /** The root device and its mount mode, if a drive is the root: defaults the user's own arguments override. */
  rootArgs: string[];
}

/** The backends the config asks for, root drive first (so it is /dev/vda). */
export function virtioBackends(config: VmConfig): VirtioBackendSpec[] {
  const drives = [...config.drives].sort((a, b) => Number(b.is_root_device) - Number(a.is_root_device));
  return [
    ...drives.map((d): VirtioBackendSpec => ({ kind: "block", id: d.drive_id, path: d.path_on_host, readOnly: d.is_read_only, rateLimiter: d.rate_limiter })),
    ...config["network-interfaces"].map((n): VirtioBackendSpec => ({
      kind: "net", id: n.iface_id, tap: n.host_dev_name, mac: n.guest_mac, rxRateLimiter: n.rx_rate_limiter, txRateLimiter: n.tx_rate_limiter,
    })),
    ...(config.entropy ? [{ kind: "rng", id: "entropy", rateLimiter: config.entropy.rate_limiter } as VirtioBackendSpec] : []),
    ...(config.vsock ? [{ kind: "vsock", id: config.vsock.vsock_id ?? "vsock", guestCid: config.vsock.guest_cid, udsPath: config.vsock.uds_path } as VirtioBackendSpec] : []),
    ...(config.balloon ? [balloonBackend(config)] : []),
  ];
}

function balloonBackend(config: VmConfig): VirtioBackendSpec {
  const b = config.balloon!;
  return {
    kind: "balloon", id: "balloon", amountMib: b.amount_mib, deflateOnOom: b.deflate_on_oom, statsPollingIntervalS: b.stats_polling_interval_s,
    freePageReporting: b.free_page_reporting, guestMemMib: config["machine-config"].mem_size_mib,
  };
}

/** Allocates windows, GSIs and eventfds for `backends` and registers them with KVM; `onRelease` collects fds to close. */
export function placeVirtioDevices(vm: Vm, config: VmConfig, onRelease: (fn: () => void) => void, userDevices: readonly VirtioBackendSpec[] = []): PlacedDevices {
  // The user's own virtio devices come after petasan's, so the root drive stays /dev/vda.
  const backends = [...virtioBackends(config), ...userDevices];
  const capacity = Math.min(DEVICE_GSIS.length, (VIRTIO_MMIO_END - VIRTIO_MMIO_START) / MMIO_DEVICE_WINDOW);
  if (backends.length > capacity) throw new DeviceManagerError(`${backends.length} virtio devices requested; petasan places at most ${capacity}`);
  const ownedEventFd = () => {
    const fd = newEventFd();
    onRelease(() => close(fd));
    return fd;
  };
  const specs: VirtioDeviceSpec[] = [];
  const cmdlineArgs: string[] = [];
  backends.forEach((backend, i) => {
    const base = VIRTIO_MMIO_START + i * MMIO_DEVICE_WINDOW;
    const gsi = DEVICE_GSIS[i];
    const irqFd = ownedEventFd();
    vm.registerIrqfd(irqFd, gsi);
    const queueFds = Array.from({ length: queueCount(backend) }, (_, q) => {
      const fd = ownedEventFd();
      vm.registerIoeventfd({ fd, addr: base + VIRTIO_MMIO_QUEUE_NOTIFY, length: 4, datamatch: BigInt(q) });
      return fd;
    });
    specs.push({ backend, base, gsi, irqFd, queueFds, registers: MmioTransport.newState() });
    cmdlineArgs.push(virtioMmioCmdlineEntry(base, gsi));
  });
  const root = config.drives.find((d) => d.is_root_device);
  const rootArgs = root ? [root.partuuid ? `root=PARTUUID=${root.partuuid}` : "root=/dev/vda", root.is_read_only ? "ro" : "rw"] : [];
  return { specs, cmdlineArgs, rootArgs };
}
