/**
 * virtio-net (virtio 1.2 §5.1) over a NetBackend: receiveq 0 takes frames from the host,
 * transmitq 1 sends the guest's frames. Both carry a virtio_net_hdr_v1 in front of each frame.
 * Optional rx and tx rate limiters (Firecracker's) charge one op and the frame's bytes per frame; while
 * one makes its side wait, TX stops taking frames and RX stops polling the tap, until the DeviceTimer.
 */
import { LogRateLimiter } from "../../log-rate-limit.js";
import type { GuestMemory } from "../../../memory/guest-memory.js";
import { COMMON_FEATURES, DEFAULT_QUEUE_SIZE, DEVICE_ID_NET, noTimer, readConfigBytes, silentLogger, type ActivateContext, type DeviceTimer, type Logger, type VirtioDevice } from "../device.js";
import { RateLimiter, type RateLimiterSettings } from "../../rate-limiter.js";
import { ChainBuffers, readSegments, subSegments, totalLength, writeSegments, type GuestSegment } from "../queue/chain-buffers.js";
import type { DescriptorChain } from "../queue/descriptor-chain.js";
import type { Queue } from "../queue/queue.js";
import { VirtqError } from "../queue/virtq-error.js";
import { generateMac, MAC_BYTES } from "./mac.js";
import type { NetBackend } from "./net-backend.js";
import { DETOUR_PEEK_BYTES, type FrameDetour } from "./frame-detour.js";

/** Feature bits, virtio 1.2 §5.1.3. */
export const VIRTIO_NET_F_CSUM = 1n << 0n;
export const VIRTIO_NET_F_GUEST_CSUM = 1n << 1n;
export const VIRTIO_NET_F_MAC = 1n << 5n;
export const VIRTIO_NET_F_GUEST_TSO4 = 1n << 7n;
export const VIRTIO_NET_F_GUEST_TSO6 = 1n << 8n;
export const VIRTIO_NET_F_HOST_TSO4 = 1n << 11n;
export const VIRTIO_NET_F_HOST_TSO6 = 1n << 12n;
export const VIRTIO_NET_F_STATUS = 1n << 16n;

/** Queue indices without VIRTIO_NET_F_MQ or CTRL_VQ (virtio 1.2 §5.1.2). */
export const RX_QUEUE = 0;
export const TX_QUEUE = 1;

/** sizeof(struct virtio_net_hdr_v1), used whenever VIRTIO_F_VERSION_1 is negotiated (virtio 1.2 §5.1.6). */
const NET_HDR_SIZE = 12;
/** Offset of num_buffers in virtio_net_hdr_v1; 1 without VIRTIO_NET_F_MRG_RXBUF (virtio 1.2 §5.1.6.4). */
const NUM_BUFFERS_OFFSET = 10;
/** Largest frame a guest may send: a 64 KiB GSO payload plus Ethernet (14) and VLAN (4) headers, plus the vnet header. */
const MAX_TX_BYTES = NET_HDR_SIZE + 65535 + 14 + 4;
/** Frames taken from the host per wakeup, so one busy link cannot starve the event loop. */
const RX_FRAMES_PER_WAKEUP = 64;

// struct virtio_net_config (virtio 1.2 §5.1.4): u8 mac[6], le16 status, le16 max_virtqueue_pairs, le16 mtu.
const CONFIG_SIZE = 12;
const CFG_STATUS = 6;
const VIRTIO_NET_S_LINK_UP = 1;

export interface NetMetrics {
  rxFrames: number;
  rxBytes: number;
  txFrames: number;
  txBytes: number;
  /** TX frames the host would not take (tap queue full). */
  txDropped: number;
  /** Times receiving stopped because the guest had no RX buffers left (the tap is then not polled). */
  rxNoBuffers: number;
  /** Malformed chains (completed with length 0). */
  invalidRequests: number;
  /** Backend failures. */
  hostErrors: number;
  /** Times RX or TX waited for its rate limiter (Firecracker's net metrics of these names). */
  rx_rate_limiter_throttled: number;
  tx_rate_limiter_throttled: number;
}

export interface NetDeviceOptions {
  backend: NetBackend;
  /** The guest's MAC; a random locally administered one when absent. */
  mac?: Uint8Array;
  logger?: Logger;
  /** Name for log lines, e.g. "virtio-net eth0". */
  name?: string;
  /** Firecracker's rx_rate_limiter and tx_rate_limiter; none by default. */
  rxRateLimiter?: RateLimiterSettings;
  txRateLimiter?: RateLimiterSettings;
  /** Called back (onTimer) when a side is throttled; without one it waits for the next kick or tap event. */
  timer?: DeviceTimer;
  /** Frames answered inside petasan (MMDS) instead of the backend. */
  detour?: FrameDetour;
}

interface ActiveNet {
  mem: GuestMemory;
  rx: Queue;
  tx: Queue;
  interrupt: () => void;
}

export class VirtioNet implements VirtioDevice {
  readonly deviceType = DEVICE_ID_NET;
  readonly features: bigint;
  readonly queueMaxSizes = [DEFAULT_QUEUE_SIZE, DEFAULT_QUEUE_SIZE];
  readonly metrics: NetMetrics = {
    rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0, txDropped: 0, rxNoBuffers: 0, invalidRequests: 0, hostErrors: 0,
    rx_rate_limiter_throttled: 0, tx_rate_limiter_throttled: 0,
  };
  readonly rxRateLimiter: RateLimiter;
  readonly txRateLimiter: RateLimiter;
  private readonly timer: DeviceTimer;
  /** A side that stopped for its rate limiter, until the timer fires. */
  private rxThrottled = false;
  private txThrottled = false;
  readonly mac: Uint8Array;
  private readonly backend: NetBackend;
  private readonly config = new Uint8Array(CONFIG_SIZE);
  private readonly log: Logger;
  /** One log rate limiter per guest-triggerable call site (log-rate-limit.ts). */
  private readonly configWriteLog = new LogRateLimiter();
  private readonly rxErrorLog = new LogRateLimiter();
  private readonly txErrorLog = new LogRateLimiter();
  private readonly badChainLog = new LogRateLimiter();
  private readonly name: string;
  private readonly detour: FrameDetour | undefined;
  private active: ActiveNet | null = null;
  /** True after the guest ran out of RX buffers, until it adds some (and kicks receiveq). */
  private rxStalled = false;

  constructor(options: NetDeviceOptions) {
    this.backend = options.backend;
    this.log = options.logger ?? silentLogger;
    this.name = options.name ?? "virtio-net";
    this.rxRateLimiter = new RateLimiter(options.rxRateLimiter);
    this.txRateLimiter = new RateLimiter(options.txRateLimiter);
    this.timer = options.timer ?? noTimer;
    this.detour = options.detour;
    this.mac = options.mac ?? generateMac();
    if (this.mac.length !== MAC_BYTES) throw new RangeError(`MAC address has ${this.mac.length} bytes, needs ${MAC_BYTES}`);
    this.config.set(this.mac);
    new DataView(this.config.buffer).setUint16(CFG_STATUS, VIRTIO_NET_S_LINK_UP, true);

    // The tap accepts partial checksums and GSO frames from the guest whenever vnet headers are on.
    let features = COMMON_FEATURES | VIRTIO_NET_F_MAC | VIRTIO_NET_F_STATUS | VIRTIO_NET_F_CSUM | VIRTIO_NET_F_HOST_TSO4 | VIRTIO_NET_F_HOST_TSO6;
    const rxOffloads = this.backend.supportedOffloads;
    if (rxOffloads.csum) {
      features |= VIRTIO_NET_F_GUEST_CSUM;
      if (rxOffloads.tso4) features |= VIRTIO_NET_F_GUEST_TSO4;
      if (rxOffloads.tso6) features |= VIRTIO_NET_F_GUEST_TSO6;
    }
    this.features = features;
  }

  get hostFd(): number {
    return this.backend.fd;
  }

  hostPollWanted(): boolean {
    return this.active !== null && !this.rxStalled && !this.rxThrottled;
  }

  readConfig(offset: number, data: Uint8Array): void {
    readConfigBytes(this.config, offset, data);
  }

  /** The MAC is read-only without VIRTIO_NET_F_CTRL_MAC_ADDR (virtio 1.2 §5.1.4.2), which is not offered. */
  writeConfig(offset: number): void {
    this.configWriteLog.log(this.log, "warn", `${this.name}: ignored config write at ${offset}`);
  }

  activate(ctx: ActivateContext): void {
    const acked = ctx.ackedFeatures;
    this.backend.setOffloads({
      csum: (acked & VIRTIO_NET_F_GUEST_CSUM) !== 0n,
      tso4: (acked & VIRTIO_NET_F_GUEST_TSO4) !== 0n,
      tso6: (acked & VIRTIO_NET_F_GUEST_TSO6) !== 0n,
    });
    this.active = { mem: ctx.mem, rx: ctx.queues[RX_QUEUE], tx: ctx.queues[TX_QUEUE], interrupt: ctx.interrupt };
    this.rxStalled = false;
  }

  reset(): void {
    this.active = null;
    this.rxStalled = false;
    this.rxThrottled = false;
    this.txThrottled = false;
    this.timer.disarm();
  }

  /** PATCH /network-interfaces/{id}: new rx/tx limits (absent buckets stay, size 0 removes one), applied at once. */
  updateRateLimiters(rx: RateLimiterSettings | undefined, tx: RateLimiterSettings | undefined): void {
    if (rx) this.rxRateLimiter.update(rx);
    if (tx) this.txRateLimiter.update(tx);
    if (this.active && (this.rxThrottled || this.txThrottled)) this.timer.arm(0);
  }

  processQueue(index: number): void {
    if (!this.active) return;
    if (index === RX_QUEUE) {
      this.rxStalled = false;
      if (this.rxThrottled) this.metrics.rx_rate_limiter_throttled++;
      else this.receiveFrames();
    } else if (index === TX_QUEUE) {
      if (this.txThrottled) this.metrics.tx_rate_limiter_throttled++;
      else this.transmitFrames();
    }
  }

  /** A rate limiter's wait is over (or the limits changed): both sides go on. */
  onTimer(): void {
    if (!this.active) return;
    if (this.txThrottled) {
      this.txThrottled = false;
      this.transmitFrames();
    }
    if (this.rxThrottled) {
      this.rxThrottled = false;
      this.receiveFrames();
    }
  }

  /** Arms the timer for the nearer end of the throttled sides' waits. */
  private armForThrottled(): void {
    let ms = Infinity;
    if (this.rxThrottled) ms = Math.min(ms, this.rxRateLimiter.blockedFor());
    if (this.txThrottled) ms = Math.min(ms, this.txRateLimiter.blockedFor());
    if (ms !== Infinity) this.timer.arm(ms);
  }

  onHostReady(): void {
    if (this.active) this.receiveFrames();
  }

  /** Moves waiting host frames into guest RX buffers until either runs out (or the per-wakeup budget). */
  private receiveFrames(): void {
    const { mem, rx, interrupt } = this.active!;
    for (let i = 0; i < RX_FRAMES_PER_WAKEUP; i++) {
      // A frame's size is known only once it is read: its op is taken first, its bytes after (consumeAfter).
      if (!this.rxRateLimiter.consume(1, "ops")) {
        this.rxThrottled = true;
        this.metrics.rx_rate_limiter_throttled++;
        this.armForThrottled();
        break;
      }
      const chain = rx.pop();
      if (!chain) {
        this.rxRateLimiter.replenish(1, "ops");
        this.rxStalled = true;
        this.metrics.rxNoBuffers++;
        break;
      }
      const received = this.receiveInto(mem, chain);
      if (received === null) {
        this.rxRateLimiter.replenish(1, "ops");
        rx.undoPop();
        break;
      }
      rx.addUsed(chain.head, received);
      this.rxRateLimiter.consumeAfter(received, "bytes");
    }
    if (rx.needsNotification()) interrupt();
  }

  /** One frame into `chain`: its length, 0 for a bad chain or a failed read, null when no frame is waiting. */
  private receiveInto(mem: GuestMemory, chain: DescriptorChain): number | null {
    let buffers: readonly GuestSegment[];
    try {
      buffers = this.rxBuffers(chain);
    } catch (err) {
      this.invalid(chain, err);
      return 0;
    }
    try {
      const detoured = this.detour?.hasFrames() ? this.receiveDetoured(mem, buffers) : null;
      if (detoured !== null) return detoured;
      const length = this.backend.receive(mem, buffers);
      if (length === null) return null;
      writeSegments(mem, subSegments(buffers, NUM_BUFFERS_OFFSET, 2), Uint8Array.of(1, 0));
      this.metrics.rxFrames++;
      this.metrics.rxBytes += length;
      return length;
    } catch (err) {
      this.metrics.hostErrors++;
      this.rxErrorLog.log(this.log, "error", `${this.name}: receive failed: ${(err as Error).message}`);
      return 0;
    }
  }

  private rxBuffers(chain: DescriptorChain): readonly GuestSegment[] {
    const buffers = ChainBuffers.of(chain);
    if (buffers.readable.length > 0) throw new VirtqError("chain-layout", "receive buffer has device-readable parts");
    if (buffers.writableBytes < NET_HDR_SIZE) throw new VirtqError("chain-layout", `receive buffer of ${buffers.writableBytes} bytes cannot hold the ${NET_HDR_SIZE}-byte header`);
    return buffers.writable;
  }

  private transmitFrames(): void {
    const { mem, tx, interrupt } = this.active!;
    for (let chain = tx.pop(); chain; chain = tx.pop()) {
      if (!this.transmit(mem, chain)) {
        tx.undoPop();
        this.txThrottled = true;
        this.metrics.tx_rate_limiter_throttled++;
        this.armForThrottled();
        break;
      }
      tx.addUsed(chain.head, 0);
    }
    if (tx.needsNotification()) interrupt();
    // Replies the detour made to these frames go out now if the guest has buffers (else on its next RX kick).
    if (this.detour?.hasFrames() && !this.rxStalled) this.receiveFrames();
  }

  /** A detour frame behind a zeroed virtio_net_hdr_v1 (no offloads: its checksums are complete), or null when none waits. */
  private receiveDetoured(mem: GuestMemory, buffers: readonly GuestSegment[]): number | null {
    const frame = this.detour!.nextFrame();
    if (frame === null) return null;
    const packet = new Uint8Array(NET_HDR_SIZE + frame.length);
    packet.set(frame, NET_HDR_SIZE);
    packet[NUM_BUFFERS_OFFSET] = 1;
    const written = writeSegments(mem, buffers, packet);
    // The stack never makes a frame larger than a standard 1514-byte Ethernet frame, which every RX buffer holds.
    if (written < packet.length) this.metrics.hostErrors++;
    return written;
  }

  /** Sends the chain's frame; false when the TX rate limiter holds it back (nothing was done). */
  private transmit(mem: GuestMemory, chain: DescriptorChain): boolean {
    let buffers: ChainBuffers;
    try {
      buffers = ChainBuffers.of(chain);
      const bytes = buffers.readableBytes;
      if (buffers.writable.length > 0) throw new VirtqError("chain-layout", "transmit buffer has device-writable parts");
      if (bytes < NET_HDR_SIZE || bytes > MAX_TX_BYTES) throw new VirtqError("chain-layout", `transmit buffer of ${bytes} bytes is not between ${NET_HDR_SIZE} and ${MAX_TX_BYTES}`);
    } catch (err) {
      this.invalid(chain, err);
      return true;
    }
    // Firecracker's rate_limiter_consume_op: one op, then the frame's bytes (the op is given back without them).
    if (!this.txRateLimiter.consume(1, "ops")) return false;
    if (!this.txRateLimiter.consume(buffers.readableBytes, "bytes")) {
      this.txRateLimiter.replenish(1, "ops");
      return false;
    }
    try {
      if (this.detour && this.detourFrame(mem, buffers.readable)) return true;
      if (this.backend.send(mem, buffers.readable)) {
        this.metrics.txFrames++;
        this.metrics.txBytes += buffers.readableBytes;
      } else {
        this.metrics.txDropped++;
      }
    } catch (err) {
      this.metrics.hostErrors++;
      this.txErrorLog.log(this.log, "error", `${this.name}: transmit failed: ${(err as Error).message}`);
    }
    return true;
  }

  /** Gives the frame to the detour if it is the detour's; true when it was taken. */
  private detourFrame(mem: GuestMemory, segments: readonly GuestSegment[]): boolean {
    const frameBytes = totalLength(segments) - NET_HDR_SIZE;
    const head = readSegments(mem, subSegments(segments, NET_HDR_SIZE, Math.min(DETOUR_PEEK_BYTES, frameBytes)));
    if (!this.detour!.wants(head)) return false;
    this.detour!.take(readSegments(mem, subSegments(segments, NET_HDR_SIZE, frameBytes)));
    return true;
  }

  private invalid(chain: DescriptorChain, err: unknown): void {
    this.metrics.invalidRequests++;
    this.badChainLog.log(this.log, "warn", `${this.name}: bad chain ${chain.head}: ${(err as Error).message}`);
  }
}
