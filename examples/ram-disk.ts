// A virtio device written in TypeScript: a virtio-blk disk held in memory (virtio 1.2 §5.2), on petasan's
// virtio-mmio transport and queues. petasan loads this module onto the thread that runs the VM's devices,
// gives the device an MMIO window, an interrupt and an ioeventfd per queue, and tells the guest's kernel
// about it; the device sees only its queues and guest memory (from activate) and its config space.
import {
  COMMON_FEATURES, DEFAULT_QUEUE_SIZE, readConfigBytes, serveQueue,
  type ActivateContext, type DescriptorChain, type GuestMemory, type UserVirtioDeviceFactory, type VirtioDevice,
} from "petasan";

const DEVICE_ID_BLOCK = 2;
const VIRTIO_BLK_F_FLUSH = 1n << 9n;
const SECTOR_SIZE = 512;
// Request types and status values, virtio 1.2 §5.2.6.
const T_IN = 0;
const T_OUT = 1;
const T_FLUSH = 4;
const T_GET_ID = 8;
const S_OK = 0;
const S_IOERR = 1;
const S_UNSUPP = 2;
const HEADER_SIZE = 16;
const ID_BYTES = 20;

const createRamDisk: UserVirtioDeviceFactory<{ sectors?: number }> = ({ options, log }) => {
  const sectors = options?.sectors ?? 2048;
  const disk = new Uint8Array(sectors * SECTOR_SIZE);
  // struct virtio_blk_config: capacity (le64, in 512-byte sectors) first.
  const config = new Uint8Array(8);
  new DataView(config.buffer).setBigUint64(0, BigInt(sectors), true);
  const metrics = { reads: 0, writes: 0, flushes: 0, badRequests: 0 };
  let active: ActivateContext | undefined;

  const device: VirtioDevice & { metrics: typeof metrics } = {
    deviceType: DEVICE_ID_BLOCK,
    features: COMMON_FEATURES | VIRTIO_BLK_F_FLUSH,
    queueMaxSizes: [DEFAULT_QUEUE_SIZE],
    metrics,
    readConfig: (offset, data) => readConfigBytes(config, offset, data),
    writeConfig: () => {},
    activate: (context) => void (active = context),
    reset: () => void (active = undefined),
    processQueue(index) {
      if (active === undefined || index !== 0) return;
      const { mem, queues, interrupt } = active;
      serveQueue(queues[0], interrupt, (chain) => {
        try {
          return serve(mem, chain);
        } catch (error) {
          // A chain that loops, or a buffer outside guest RAM: completed with nothing written; the device goes on.
          if (metrics.badRequests++ === 0) log("Warning", `bad request: ${(error as Error).message}; further ones are only counted`);
          return 0;
        }
      });
    },
  };
  return device;

  /** One request: header, data buffers, status byte. Returns the bytes written into the guest's buffers. */
  function serve(mem: GuestMemory, chain: DescriptorChain): number {
    const buffers = chain.descriptors();
    const header = buffers[0];
    const status = buffers[buffers.length - 1];
    if (buffers.length < 2 || header.writable || header.len < HEADER_SIZE || !status.writable) {
      metrics.badRequests++;
      return 0;
    }
    const data = buffers.slice(1, -1);
    const view = new DataView(mem.read(header.addr, HEADER_SIZE).buffer);
    const type = view.getUint32(0, true);
    const offset = Number(view.getBigUint64(8, true)) * SECTOR_SIZE;
    const length = data.reduce((sum, d) => sum + d.len, 0);
    let written = 0;
    let result = S_OK;
    if ((type === T_IN || type === T_OUT) && offset + length > disk.length) result = S_IOERR;
    else if (type === T_IN && data.every((d) => d.writable)) {
      let at = offset;
      for (const d of data) mem.write(d.addr, disk.subarray(at, (at += d.len)));
      written = length;
      metrics.reads++;
    } else if (type === T_OUT && data.every((d) => !d.writable)) {
      let at = offset;
      for (const d of data) disk.set(mem.read(d.addr, d.len), (at += d.len) - d.len);
      metrics.writes++;
    } else if (type === T_FLUSH) metrics.flushes++;
    else if (type === T_GET_ID && data.length === 1 && data[0].writable) {
      const id = new Uint8Array(ID_BYTES);
      id.set(new TextEncoder().encode("petasan-ram-disk"));
      mem.write(data[0].addr, id.subarray(0, Math.min(ID_BYTES, data[0].len)));
      written = Math.min(ID_BYTES, data[0].len);
    } else result = type === T_IN || type === T_OUT ? S_IOERR : S_UNSUPP;
    mem.write(status.addr, Uint8Array.of(result));
    return written + 1;
  }
};

export default createRamDisk;
