/**
 * A running VM's counters as typed objects (VirtualMachine.metrics()): exits by kind per vCPU, and each
 * device's counters since boot. The same numbers feed the Firecracker-style metrics lines
 * (config `metrics`), which report increments instead.
 */
import type { ExitCounter } from "../vmm/vcpu/control.js";
import type { SerialMetrics } from "../devices/legacy/serial.js";
import type { I8042Metrics } from "../devices/legacy/i8042.js";
import type { TransportMetrics } from "../devices/virtio/mmio-transport.js";
import type { BlockMetrics } from "../devices/virtio/block/block-device.js";
import type { NetMetrics } from "../devices/virtio/net/net-device.js";
import type { RngMetrics } from "../devices/virtio/rng/rng-device.js";
import type { UserDeviceMetrics } from "../vmm/device-thread/user-devices.js";
import type { BalloonMetrics } from "../devices/virtio/balloon/balloon-device.js";

export type { ExitCounter, SerialMetrics, I8042Metrics, TransportMetrics, BlockMetrics, NetMetrics, RngMetrics, UserDeviceMetrics, BalloonMetrics };

/**
 * One vCPU's exits by kind since boot (io_in, io_out, mmio_read, mmio_write, intr, hlt, other), how many of the
 * register accesses among them went to the device thread (handed_over; the rest were served on the vCPU thread), and kicks.
 */
export type VcpuExitCounts = Record<ExitCounter, number>;

/** Device counters since boot; virtio devices appear as `block_<drive_id>`, `net_<iface_id>`, `rng_entropy`, `vsock_<id>` and `balloon_balloon`, user devices as `user_<name>`. */
export interface DeviceMetrics {
  /** COM1, the serial console. */
  uart: SerialMetrics;
  /** The i8042 (reset line, Ctrl+Alt+Del). */
  i8042: I8042Metrics;
  [block: `block_${string}`]: BlockMetrics & { transport: TransportMetrics };
  [net: `net_${string}`]: NetMetrics & { transport: TransportMetrics };
  [rng: `rng_${string}`]: RngMetrics & { transport: TransportMetrics };
  /** Devices written by the user (CreateVmOptions.devices), by name: a bus device's counters, or a virtio device's own metrics (if it has a `metrics` object) and its transport's. */
  [user: `user_${string}`]: UserDeviceMetrics | { transport: TransportMetrics; [counter: string]: unknown };
  [balloon: `balloon_${string}`]: BalloonMetrics & { transport: TransportMetrics };
}

export interface VmMetrics {
  /** Indexed by vCPU id. */
  vcpus: VcpuExitCounts[];
  /**
   * CPU time (user + system) each vCPU's host thread has used since it started, in microseconds, indexed by
   * vCPU id: the time the guest ran plus the time its exits cost in petasan.
   */
  vcpuCpuTimeUs: number[];
  devices: DeviceMetrics;
}
