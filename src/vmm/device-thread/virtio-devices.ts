/**
 * Builds the virtio devices the device manager placed, on the device thread that owns them: backend
 * (image file, tap, getrandom) → device → MMIO transport on the bus; each queue's ioeventfd, the tap fd
 * and the device's timerfd (its DeviceTimer: rate limiters, kick budgets) join the event loop, and
 * interrupts leave through the device's irqfd.
 */
import type { Bus } from "../../devices/bus.js";
import type { GuestMemory } from "../../memory/guest-memory.js";
import {
  FileDisk, MmioTransport, MMIO_DEVICE_WINDOW, UnixVsockHost, VirtioBlock, VirtioNet, VirtioRng, VirtioVsock, getrandomSource, openTap, parseMac,
  type DeviceTimer, type HostIo, type Logger as VirtioLogger, type VirtioDevice,
} from "../../devices/virtio/index.js";
import type { RateLimiterUpdate } from "../../config/rate-limiter.js";
import { close as closeFd } from "../../sys/libc.js";
import { armTimerFd, drainTimerFd, newTimerFd } from "../../sys/timerfd.js";
import type { Logger } from "../logger.js";
import { virtioLogger } from "../virtio-log.js";
import { VirtioBalloon, madviseDiscarder } from "../../devices/virtio/index.js";
import { TimerFd } from "../../sys/timerfd.js";
import type { BalloonOp, BalloonState } from "./protocol.js";
import { EPOLLERR, EPOLLET, EPOLLHUP, EPOLLIN, EPOLLOUT, EPOLLRDHUP, type FdWatcher } from "./event-loop.js";
import { drainEventFd } from "../../sys/eventfd.js";
import { irqfdLine } from "./irq-line.js";
import type { VirtioDeviceSpec } from "./protocol.js";
import { createUserVirtioDevice, type UserVirtioDeviceFactory } from "./user-devices.js";
import type { MmdsService } from "../../devices/mmds/index.js";
import type { FrameDetour } from "../../devices/virtio/net/frame-detour.js";

export interface AttachedVirtioDevice {
  spec: VirtioDeviceSpec;
  device: VirtioDevice;
  transport: MmioTransport;
  /** Releases the backend (file, tap). */
  close: () => void;
  /** The timerfd behind the device's DeviceTimer, closed with the device (closeAttached). */
  timerFd: number;
}

/** Releases what attachVirtioDevices opened for one device: its backend and its timerfd. */
export function closeAttached(a: AttachedVirtioDevice): void {
  a.close();
  closeFd(a.timerFd);
}

function timerOver(fd: number): DeviceTimer {
  return { arm: (delayMs) => armTimerFd(fd, delayMs), disarm: () => armTimerFd(fd, null) };
}



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

/** What a device is made with besides its spec: its timer, the user's virtio factories, MMDS for net devices. */
interface DeviceContext {
  timer: DeviceTimer;
  user: UserVirtio;
  mmds: MmdsAttachment | undefined;
  mem: GuestMemory;
  /** Tells the driver the device's config space changed (its transport's configChanged, once it exists). */
  configChanged: () => void;
}

function createDevice(spec: VirtioDeviceSpec, log: VirtioLogger, { timer, user, mmds, mem, configChanged }: DeviceContext): { device: VirtioDevice; close: () => void } {
  const b = spec.backend;
  switch (b.kind) {
    case "block": {
      const disk = FileDisk.open(b.path, { readOnly: b.readOnly });
      const device = new VirtioBlock({ disk, id: b.id, logger: log, name: `virtio-blk ${b.id}`, rateLimiter: b.rateLimiter, timer });
      return { device, close: () => disk.close() };
    }
    case "net": {
      const tap = openTap(b.tap);
      try {
        const mac = b.mac ? parseMac(b.mac) : undefined;
        const detour = mmdsDetour(mmds, b.id);
        const device = new VirtioNet({
          backend: tap, mac, logger: log, name: `virtio-net ${b.id}`, rxRateLimiter: b.rxRateLimiter, txRateLimiter: b.txRateLimiter, timer, detour,
        });
        return { device, close: () => tap.close() };
      } catch (e) {
        tap.close();
        throw e;
      }
    }
    case "rng":
      return { device: new VirtioRng({ source: getrandomSource, logger: log, rateLimiter: b.rateLimiter, timer }), close: () => {} };
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
    case "user":
      return { device: createUserVirtioDevice(b, user.factories, user.logger, configChanged), close: () => {} };
    case "balloon": {
      const statsTimer = b.statsPollingIntervalS > 0 ? TimerFd.create() : undefined;
      try {
        const device = new VirtioBalloon({ ...b, discarder: madviseDiscarder(mem), statsTimer, logger: log });
        return { device, close: () => device.close() };
      } catch (e) {
        statsTimer?.close();
        throw e;
      }
    }
  }
}

/** PATCH with rate limiters: hands them to the running drive or network interface. */
export function updateRateLimiters(devices: readonly AttachedVirtioDevice[], update: RateLimiterUpdate): void {
  if (update.device === "drive") {
    const a = devices.find((d) => d.spec.backend.kind === "block" && d.spec.backend.id === update.id);
    if (!a) throw new Error(`no drive "${update.id}"`);
    (a.device as VirtioBlock).updateRateLimiter(update.rateLimiter);
  } else {
    const a = devices.find((d) => d.spec.backend.kind === "net" && d.spec.backend.id === update.id);
    if (!a) throw new Error(`no network interface "${update.id}"`);
    (a.device as VirtioNet).updateRateLimiters(update.rx, update.tx);
  }
}

/** Serves one balloon request from the API (Firecracker's Vmm::update_balloon_config and friends). */
export function balloonRequest(devices: readonly AttachedVirtioDevice[], op: BalloonOp): BalloonState {
  const a = devices.find((d) => d.spec.backend.kind === "balloon");
  // Firecracker's VmmError::FindDeviceError(DeviceNotFound) for a VM without a balloon.
  if (!a) throw new Error("No balloon device found.");
  const balloon = a.device as VirtioBalloon;
  switch (op.kind) {
    case "set-target":
      balloon.setTargetMib(op.amountMib);
      a.transport.configChanged();
      break;
    case "set-stats-interval":
      balloon.setStatsPollingInterval(op.seconds);
      break;
    case "statistics":
      return { amountMib: balloon.targetMib, statsPollingIntervalS: balloon.statsPollingIntervalS, statistics: { ...balloon.statistics() } };
    case "get":
      break;
  }
  return { amountMib: balloon.targetMib, statsPollingIntervalS: balloon.statsPollingIntervalS };
}

/** The user's virtio devices' factories (loaded before the device thread's loop starts) and the thread's log. */
interface UserVirtio {
  factories: ReadonlyMap<string, UserVirtioDeviceFactory>;
  logger: Logger;
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
function hostIo(loop: FdWatcher, transport: MmioTransport): HostIo {
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
  specs: readonly VirtioDeviceSpec[], mmio: Bus, loop: FdWatcher, mem: GuestMemory, logger: Logger,
  options: { userFactories?: ReadonlyMap<string, UserVirtioDeviceFactory>; mmds?: MmdsAttachment } = {},
): AttachedVirtioDevice[] {
  const log = virtioLogger(logger);
  const attached: AttachedVirtioDevice[] = [];
  for (const spec of specs) {
    const name = `virtio-${spec.backend.kind} ${spec.backend.id}`;
    let created;
    let timerFd = -1;
    let transportOf: MmioTransport | undefined;
    try {
      timerFd = newTimerFd();
      created = createDevice(spec, log, {
        timer: timerOver(timerFd), user: { factories: options.userFactories ?? new Map(), logger }, mmds: options.mmds, mem,
        configChanged: () => transportOf?.configChanged(),
      });
    } catch (e) {
      if (timerFd >= 0) closeFd(timerFd);
      for (const a of attached) closeAttached(a);
      throw new Error(`${name}: ${(e as Error).message}`, { cause: e });
    }
    const transport = new MmioTransport(created.device, { mem, interrupt: irqfdLine(spec.irqFd), logger: log, name, state: spec.registers });
    transportOf = transport;
    mmio.insert(transport, spec.base, MMIO_DEVICE_WINDOW, name);
    const a: AttachedVirtioDevice = { spec, transport, timerFd, ...created };
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
    loop.add(timerFd, () => {
      drainTimerFd(timerFd);
      transport.timerFired();
      syncHostPoll();
    });
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
