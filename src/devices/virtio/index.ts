/** The virtio API the VMM wires: transport, devices, their backends, and the queue types devices see. */
export {
  MMIO_DEVICE_WINDOW, VIRTIO_MMIO_QUEUE_NOTIFY, MmioTransport, SharedDeviceInfo, mmioWriteNeedsDevice, virtioMmioCmdlineEntry, type MmioTransportOptions, type TransportMetrics,
} from "./mmio-transport.js";
export { DEFAULT_QUEUE_SIZE, silentLogger, type ActivateContext, type DeviceTimer, type HostEvents, type HostIo, type Logger, type LogLevel, type VirtioDevice } from "./device.js";
export { Queue, type QueueFeatures, type QueueLayout } from "./queue/queue.js";
export { DescriptorChain, type Descriptor } from "./queue/descriptor-chain.js";
export { VirtqError, type VirtqErrorCode } from "./queue/virtq-error.js";
export { VirtioBlock, type BlockDeviceOptions, type BlockMetrics } from "./block/block-device.js";
export { DiskIoError, type DiskBackend } from "./block/disk-backend.js";
export { FileDisk, type FileDiskOptions } from "./block/file-disk.js";
export { MemoryDisk } from "./block/memory-disk.js";
export { VirtioNet, type NetDeviceOptions, type NetMetrics } from "./net/net-device.js";
export { NetIoError, type GuestOffloads, type NetBackend } from "./net/net-backend.js";
export { openTap, TapBackend } from "./net/tap.js";
export { formatMac, generateMac, MacAddressError, parseMac } from "./net/mac.js";
export { VirtioRng, type EntropySource, type RngDeviceOptions, type RngMetrics } from "./rng/rng-device.js";
export { getrandomSource } from "./rng/getrandom-source.js";
export { VirtioVsock, MAX_CONNECTIONS as VSOCK_MAX_CONNECTIONS, type VsockDeviceOptions, type VsockMetrics } from "./vsock/vsock-device.js";
export { UnixVsockHost, VsockHostError, type StreamSocket, type VsockHostSide } from "./vsock/unix-socket.js";
export { VirtioBalloon, BalloonError, type BalloonDeviceOptions, type BalloonMetrics, type PageDiscarder, type IntervalTimer } from "./balloon/balloon-device.js";
export { madviseDiscarder } from "./balloon/madvise-discarder.js";
export type { BalloonGuestStats } from "./balloon/stats.js";
