/**
 * Linux tap devices as a virtio-net backend: the host I/O backend of net/. Frames carry a
 * 12-byte virtio_net_hdr_v1 in front (IFF_VNET_HDR + TUNSETVNETHDRSZ), which is exactly the
 * header the virtio driver uses with VIRTIO_F_VERSION_1, so guest buffers go to readv/writev as is.
 */
import { EAGAIN, EINTR, SysError } from "../../../sys/errors.js";
import { close, errno, ioctlInt, ioctlPtr, open, readv, writev } from "../../../sys/libc.js";
import type { GuestMemory } from "../../../memory/guest-memory.js";
import { GuestIovecs, IOV_MAX } from "../host-iovec.js";
import type { GuestSegment } from "../queue/chain-buffers.js";
import { NetIoError, type GuestOffloads, type NetBackend } from "./net-backend.js";

// open(2) flags, asm-generic/fcntl.h.
const O_RDWR = 0o2;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
// tun ioctls, linux/if_tun.h: _IOW('T', 202, int), _IOW('T', 208, unsigned int), _IOW('T', 216, int).
const TUNSETIFF = 0x400454ca;
const TUNSETOFFLOAD = 0x400454d0;
const TUNSETVNETHDRSZ = 0x400454d8;
// struct ifreq flags, linux/if_tun.h.
const IFF_TAP = 0x0002;
const IFF_NO_PI = 0x1000;
const IFF_VNET_HDR = 0x4000;
// TUNSETOFFLOAD bits, linux/if_tun.h.
const TUN_F_CSUM = 0x01;
const TUN_F_TSO4 = 0x02;
const TUN_F_TSO6 = 0x04;
/** sizeof(struct ifreq) on LP64, with ifr_name[IFNAMSIZ = 16] first and ifr_flags right after. */
const IFREQ_SIZE = 40;
const IFNAMSIZ = 16;
/** sizeof(struct virtio_net_hdr_v1) (virtio 1.2 §5.1.6). */
export const VIRTIO_NET_HDR_SIZE = 12;

export class TapBackend implements NetBackend {
  readonly supportedOffloads: GuestOffloads;
  private closed = false;
  /** Rebuilt for every frame: the device sends and receives one frame at a time. */
  private readonly iov = new GuestIovecs();

  private constructor(readonly fd: number, readonly name: string) {
    this.supportedOffloads = this.probeOffloads();
    this.setOffloads({ csum: false, tso4: false, tso6: false });
  }

  /** Opens (creating if needed, which needs CAP_NET_ADMIN) the tap `name`, non-blocking, with vnet headers. */
  static open(name: string): TapBackend {
    const nameBytes = Buffer.from(name, "utf8");
    if (nameBytes.length === 0 || nameBytes.length >= IFNAMSIZ) throw new NetIoError(`tap name "${name}" must be 1 to ${IFNAMSIZ - 1} bytes`);
    const fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC, 0) as number;
    if (fd < 0) throw new NetIoError(`cannot open /dev/net/tun for tap ${name}`, { cause: new SysError("open", errno(), "/dev/net/tun") });
    try {
      const ifr = Buffer.alloc(IFREQ_SIZE);
      nameBytes.copy(ifr);
      ifr.writeUInt16LE(IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, IFNAMSIZ);
      if ((ioctlPtr(fd, TUNSETIFF, ifr) as number) < 0) throw new NetIoError(`cannot attach tap ${name}`, { cause: new SysError("TUNSETIFF", errno(), name) });
      const hdrSize = Buffer.alloc(4);
      hdrSize.writeInt32LE(VIRTIO_NET_HDR_SIZE);
      if ((ioctlPtr(fd, TUNSETVNETHDRSZ, hdrSize) as number) < 0) throw new NetIoError(`cannot set vnet header size on tap ${name}`, { cause: new SysError("TUNSETVNETHDRSZ", errno(), name) });
      return new TapBackend(fd, name);
    } catch (err) {
      close(fd);
      throw err;
    }
  }

  setOffloads(offloads: GuestOffloads): void {
    const flags = (offloads.csum ? TUN_F_CSUM : 0) | (offloads.tso4 ? TUN_F_TSO4 : 0) | (offloads.tso6 ? TUN_F_TSO6 : 0);
    if ((ioctlInt(this.fd, TUNSETOFFLOAD, flags) as number) < 0) throw new NetIoError(`cannot set offloads 0x${flags.toString(16)} on tap ${this.name}`, { cause: new SysError("TUNSETOFFLOAD", errno(), this.name) });
  }

  receive(mem: GuestMemory, segments: readonly GuestSegment[]): number | null {
    const iov = this.iovecs(mem, segments);
    for (;;) {
      const n = Number(readv(this.fd, iov.from(0), iov.count));
      if (n >= 0) return n;
      const e = errno();
      if (e === EAGAIN) return null;
      if (e !== EINTR) throw new NetIoError(`reading tap ${this.name} failed`, { cause: new SysError("readv", e, this.name) });
    }
  }

  send(mem: GuestMemory, segments: readonly GuestSegment[]): boolean {
    const iov = this.iovecs(mem, segments);
    for (;;) {
      // A tap takes a whole frame per write or none of it, so there is no short write to resume.
      const n = Number(writev(this.fd, iov.from(0), iov.count));
      if (n >= 0) return true;
      const e = errno();
      if (e === EAGAIN) return false;
      if (e !== EINTR) throw new NetIoError(`writing tap ${this.name} failed`, { cause: new SysError("writev", e, this.name) });
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    close(this.fd);
  }

  /** Linux requires TUN_F_CSUM for any TSO bit; try the richest set first. */
  private probeOffloads(): GuestOffloads {
    if ((ioctlInt(this.fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) as number) === 0) return { csum: true, tso4: true, tso6: true };
    if ((ioctlInt(this.fd, TUNSETOFFLOAD, TUN_F_CSUM) as number) === 0) return { csum: true, tso4: false, tso6: false };
    return { csum: false, tso4: false, tso6: false };
  }

  private iovecs(mem: GuestMemory, segments: readonly GuestSegment[]): GuestIovecs {
    const iov = this.iov;
    iov.build(mem, segments);
    if (iov.count > IOV_MAX) throw new NetIoError(`frame spans ${iov.count} buffers, more than IOV_MAX ${IOV_MAX}`);
    return iov;
  }
}

/** Opens the tap `name` (see TapBackend.open). */
export function openTap(name: string): TapBackend {
  return TapBackend.open(name);
}
