/**
 * virtio entropy device (virtio 1.2 §5.4): one queue of device-writable buffers that it fills
 * with random bytes from the host. The optional rate limiter (Firecracker's entropy device) charges one
 * op and the bytes handed out per request.
 */
import { LogRateLimiter } from "../../log-rate-limit.js";
import type { GuestMemory } from "../../../memory/guest-memory.js";
import { COMMON_FEATURES, DEFAULT_QUEUE_SIZE, DEVICE_ID_ENTROPY, noTimer, silentLogger, type ActivateContext, type DeviceTimer, type Logger, type VirtioDevice } from "../device.js";
import { RateLimiter, type RateLimiterSettings } from "../../rate-limiter.js";
import { hostContiguousPieces } from "../guest-pieces.js";
import { ChainBuffers, subSegments } from "../queue/chain-buffers.js";
import type { DescriptorChain } from "../queue/descriptor-chain.js";
import type { Queue } from "../queue/queue.js";
import { VirtqError } from "../queue/virtq-error.js";

/** Fills `dest` completely with random bytes, or throws. */
export interface EntropySource {
  fill(dest: Uint8Array): void;
}

/**
 * The most bytes handed out per request. The device may use less than the whole buffer
 * (virtio 1.2 §5.4.7.2), and this bounds the work one hostile chain can cause; Linux asks
 * for at most a page at a time.
 */
export const MAX_ENTROPY_PER_REQUEST = 64 * 1024;

export interface RngMetrics {
  requests: number;
  bytes: number;
  /** Chains completed with length 0 because they were malformed. */
  invalidRequests: number;
  /** Host entropy source failures. */
  hostErrors: number;
  /** Times a request waited for the rate limiter (Firecracker's entropy metric of this name). */
  entropy_rate_limiter_throttled: number;
}

export interface RngDeviceOptions {
  source: EntropySource;
  logger?: Logger;
  /** Firecracker's entropy rate_limiter; none by default. */
  rateLimiter?: RateLimiterSettings;
  /** Called back (onTimer) when throttled; without one a throttled queue waits for the next kick. */
  timer?: DeviceTimer;
}

export class VirtioRng implements VirtioDevice {
  readonly deviceType = DEVICE_ID_ENTROPY;
  /** No device-specific features (virtio 1.2 §5.4.3). */
  readonly features = COMMON_FEATURES;
  /** One queue, requestq (virtio 1.2 §5.4.2). */
  readonly queueMaxSizes = [DEFAULT_QUEUE_SIZE];
  readonly metrics: RngMetrics = { requests: 0, bytes: 0, invalidRequests: 0, hostErrors: 0, entropy_rate_limiter_throttled: 0 };
  readonly rateLimiter: RateLimiter;
  private readonly timer: DeviceTimer;
  private readonly source: EntropySource;
  private readonly log: Logger;
  /** One log rate limiter per guest-triggerable call site (log-rate-limit.ts). */
  private readonly badChainLog = new LogRateLimiter();
  private readonly sourceErrorLog = new LogRateLimiter();
  private active: { mem: GuestMemory; queue: Queue; interrupt: () => void } | null = null;

  constructor(options: RngDeviceOptions) {
    this.source = options.source;
    this.log = options.logger ?? silentLogger;
    this.rateLimiter = new RateLimiter(options.rateLimiter);
    this.timer = options.timer ?? noTimer;
  }

  /** No device configuration layout (virtio 1.2 §5.4.4). */
  readConfig(_offset: number, data: Uint8Array): void {
    data.fill(0);
  }

  writeConfig(): void {}

  activate(ctx: ActivateContext): void {
    this.active = { mem: ctx.mem, queue: ctx.queues[0], interrupt: ctx.interrupt };
  }

  reset(): void {
    this.active = null;
    this.timer.disarm();
  }

  /** A new rate limiter configuration (absent buckets stay, size 0 removes one); throttled requests go on at once. */
  updateRateLimiter(settings: RateLimiterSettings): void {
    this.rateLimiter.update(settings);
    if (this.active) this.timer.arm(0);
  }

  processQueue(index: number): void {
    if (this.active && index === 0) this.drain();
  }

  onTimer(): void {
    if (this.active) this.drain();
  }

  /** Serves requests until none are left or the rate limiter says wait (then the request goes back on the ring). */
  private drain(): void {
    const { queue, interrupt } = this.active!;
    for (let chain = queue.pop(); chain; chain = queue.pop()) {
      const used = this.serve(chain);
      if (used === THROTTLED) {
        queue.undoPop();
        this.metrics.entropy_rate_limiter_throttled++;
        this.timer.arm(this.rateLimiter.blockedFor());
        break;
      }
      queue.addUsed(chain.head, used);
    }
    if (queue.needsNotification()) interrupt();
  }

  /** Fills the chain's writable buffers; returns the bytes written (0 for a malformed chain), or THROTTLED. */
  private serve(chain: DescriptorChain): number {
    const mem = this.active!.mem;
    let buffers: ChainBuffers;
    try {
      buffers = ChainBuffers.of(chain);
      if (buffers.readable.length > 0) throw new VirtqError("chain-layout", "entropy request has device-readable buffers");
    } catch (err) {
      this.metrics.requests++;
      this.metrics.invalidRequests++;
      this.badChainLog.log(this.log, "warn", `virtio-rng: bad request chain ${chain.head}: ${(err as Error).message}`);
      return 0;
    }
    const length = Math.min(buffers.writableBytes, MAX_ENTROPY_PER_REQUEST);
    if (!this.admit(length)) return THROTTLED;
    this.metrics.requests++;
    let written = 0;
    try {
      for (const piece of hostContiguousPieces(mem, subSegments(buffers.writable, 0, length))) {
        this.source.fill(mem.slice(piece.addr, piece.len));
        written += piece.len;
      }
    } catch (err) {
      this.metrics.hostErrors++;
      this.sourceErrorLog.log(this.log, "error", `virtio-rng: entropy source failed: ${(err as Error).message}`);
    }
    this.metrics.bytes += written;
    // Bytes the source could not give are not charged (Firecracker replenishes a failed request).
    if (written < length) this.rateLimiter.replenish(length - written, "bytes");
    return written;
  }

  /** One op and `bytes` (Firecracker's rate_limit_request); the op is given back when the bytes are not there. */
  private admit(bytes: number): boolean {
    if (!this.rateLimiter.consume(1, "ops")) return false;
    if (!this.rateLimiter.consume(bytes, "bytes")) {
      this.rateLimiter.replenish(1, "ops");
      return false;
    }
    return true;
  }
}

/** serve()'s answer for a request the rate limiter holds back. */
const THROTTLED = -1;
