/**
 * Builds the virtio devices the device manager placed, on the device thread that owns them: backend
 * (image file, tap, getrandom) → device → MMIO transport on the bus; each queue's ioeventfd and the tap fd
 * join the event loop, and interrupts leave through the device's irqfd.
 */
import type { Bus } from "../../devices/bus.js";
import type { GuestMemory } from "../../memory/guest-memory.js";
import {
  FileDisk, MmioTransport, MMIO_DEVICE_WINDOW, UnixVsockHost, VirtioBlock, VirtioNet, VirtioRng, VirtioVsock, getrandomSource, openTap, parseMac,
  type HostIo, type Logger as VirtioLogger, type VirtioDevice,
} from "../../devices/virtio/index.js";
import type { Logger } from "../logger.js";
import { EPOLLERR, EPOLLET, EPOLLHUP, EPOLLIN, EPOLLOUT, EPOLLRDHUP, type EventLoop } from "./event-loop.js";
import { drainEventFd } from "../../sys/eventfd.js";
import { irqfdLine } from "./irq-line.js";
import type { VirtioDeviceSpec } from "./protocol.js";
import type { MmdsService } from "../../devices/mmds/index.js";
import type { FrameDetour } from "../../devices/virtio/net/frame-detour.js";

export interface AttachedVirtioDevice {
  spec: VirtioDeviceSpec;
  device: VirtioDevice;
  transport: MmioTransport;
  /** Releases the backend (file, tap). */
  close: () => void;
}

const LEVELS = { error: "Error", warn: "Warning", info: "Info", debug: "Debug" } as const;

/** MMDS and the interfaces that detour to it. */
export interface MmdsAttachment {
  service: MmdsService;
  interfaces: readonly string[];
}

/** The net device's detour hook over one interface's MMDS network stack. */
function mmdsDetour(mmds: MmdsAttachment | undefined, ifaceId: string): FrameDetour | undefined {
  if (mmds === undefined || !mmds.interfaces.includes(ifaceId)) return undefined;
  const stack = mmds.service.newNetworkStack();
  return {
    wants: (head) => stack.isMmdsFrame(head),
    take: (frame) => stack.detour(frame),
    hasFrames: () => stack.hasFrames(),
    nextFrame: () => stack.nextFrame(),
  };
}

function createDevice(spec: VirtioDeviceSpec, log: VirtioLogger, mmds: MmdsAttachment | undefined): { device: VirtioDevice; close: () => void } {
  const b = spec.backend;
  switch (b.kind) {
    case "block": {
      const disk = FileDisk.open(b.path, { readOnly: b.readOnly });
      const device = new VirtioBlock({ disk, id: b.id, logger: log, name: `virtio-blk ${b.id}` });
      return { device, close: () => disk.close() };
    }
    case "net": {
      const tap = openTap(b.tap);
      const mac = b.mac ? parseMac(b.mac) : undefined;
      const detour = mmdsDetour(mmds, b.id);
      return { device: new VirtioNet({ backend: tap, mac, logger: log, name: `virtio-net ${b.id}`, detour }), close: () => tap.close() };
    }
    case "rng":
      return { device: new VirtioRng({ source: getrandomSource, logger: log }), close: () => {} };
    case "vsock": {
      const host = UnixVsockHost.listen(b.udsPath);
      try {
        const device = new VirtioVsock({ guestCid: b.guestCid, host, logger: log, name: `virtio-vsock ${b.id}` });
        return { device, close: () => device.close() };
      } catch (e) {
        host.close();
        throw e;
      }
    }
  }
}

/** Points block device `driveId` at the image `path` (same read-only mode) and tells the guest its capacity changed. */
export function swapDriveImage(devices: readonly AttachedVirtioDevice[], driveId: string, path: string): void {
  const a = devices.find((d) => d.spec.backend.kind === "block" && d.spec.backend.id === driveId);
  if (!a || a.spec.backend.kind !== "block") throw new Error(`no drive "${driveId}"`);
  const next = FileDisk.open(path, { readOnly: a.spec.backend.readOnly });
  try {
    (a.device as VirtioBlock).replaceDisk(next);
  } catch (e) {
    next.close();
    throw e;
  }
  const closePrevious = a.close;
  a.close = () => next.close();
  closePrevious();
  a.transport.configChanged();
}

/** A device's own host fds on the event loop: edge-triggered, and run under the transport's guard. */
function hostIo(loop: EventLoop, transport: MmioTransport): HostIo {
  return {
    watch: (fd, onEvent) => loop.add(fd, (events) => transport.hostEvent(() => onEvent({
      readable: (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) !== 0,
      writable: (events & EPOLLOUT) !== 0,
      hangup: (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) !== 0,
    })), EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET),
    unwatch: (fd) => loop.remove(fd),
  };
}

export function attachVirtioDevices(
  specs: readonly VirtioDeviceSpec[], mmio: Bus, loop: EventLoop, mem: GuestMemory, logger: Logger, options: { mmds?: MmdsAttachment } = {},
): AttachedVirtioDevice[] {
  const log: VirtioLogger = (level, msg) => logger(LEVELS[level], msg);
  const attached: AttachedVirtioDevice[] = [];
  for (const spec of specs) {
    const name = `virtio-${spec.backend.kind} ${spec.backend.id}`;
    let created;
    try {
      created = createDevice(spec, log, options.mmds);
    } catch (e) {
      for (const a of attached) a.close();
      throw new Error(`${name}: ${(e as Error).message}`, { cause: e });
    }
    const transport = new MmioTransport(created.device, { mem, interrupt: irqfdLine(spec.irqFd), logger: log, name });
    mmio.insert(transport, spec.base, MMIO_DEVICE_WINDOW, name);
    const a: AttachedVirtioDevice = { spec, transport, ...created };
    attached.push(a);
    created.device.attachHost?.(hostIo(loop, transport));

    const hostFd = transport.hostFd;
    let hostArmed = hostFd !== undefined;
    /** Polls the tap only while the guest has buffers for what it would deliver (else it would spin). */
    const syncHostPoll = () => {
      if (hostFd === undefined) return;
      const want = transport.hostPollWanted();
      if (want !== hostArmed) {
        loop.modify(hostFd, want ? EPOLLIN : 0);
        hostArmed = want;
      }
    };
    spec.queueFds.forEach((fd, queue) =>
      loop.add(fd, () => {
        drainEventFd(fd);
        transport.notify(queue);
        syncHostPoll();
      }),
    );
    if (hostFd !== undefined) {
      loop.add(hostFd, () => {
        transport.hostReady();
        syncHostPoll();
      });
      syncHostPoll();
    }
  }
  return attached;
}
