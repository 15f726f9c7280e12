/**
 * virtio entropy device (virtio 1.2 §5.4): one queue of device-writable buffers that it fills
 * with random bytes from the host.
 */
import { LogRateLimiter } from "../../log-rate-limit.js";
import type { GuestMemory } from "../../../memory/guest-memory.js";
import { COMMON_FEATURES, DEFAULT_QUEUE_SIZE, DEVICE_ID_ENTROPY, serveQueue, silentLogger, type ActivateContext, type Logger, type VirtioDevice } from "../device.js";
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
}

export interface RngDeviceOptions {
  source: EntropySource;
  logger?: Logger;
}

export class VirtioRng implements VirtioDevice {
  readonly deviceType = DEVICE_ID_ENTROPY;
  /** No device-specific features (virtio 1.2 §5.4.3). */
  readonly features = COMMON_FEATURES;
  /** One queue, requestq (virtio 1.2 §5.4.2). */
  readonly queueMaxSizes = [DEFAULT_QUEUE_SIZE];
  readonly metrics: RngMetrics = { requests: 0, bytes: 0, invalidRequests: 0, hostErrors: 0 };
  private readonly source: EntropySource;
  private readonly log: Logger;
  /** One log rate limiter per guest-triggerable call site (log-rate-limit.ts). */
  private readonly badChainLog = new LogRateLimiter();
  private readonly sourceErrorLog = new LogRateLimiter();
  private active: { mem: GuestMemory; queue: Queue; interrupt: () => void } | null = null;

  constructor(options: RngDeviceOptions) {
    this.source = options.source;
    this.log = options.logger ?? silentLogger;
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
  }

  processQueue(index: number): void {
    if (!this.active || index !== 0) return;
    serveQueue(this.active.queue, this.active.interrupt, (chain) => this.serve(chain));
  }

  /** Fills the chain's writable buffers; returns the bytes written (0 for a malformed chain). */
  private serve(chain: DescriptorChain): number {
    this.metrics.requests++;
    const mem = this.active!.mem;
    let buffers: ChainBuffers;
    try {
      buffers = ChainBuffers.of(chain);
      if (buffers.readable.length > 0) throw new VirtqError("chain-layout", "entropy request has device-readable buffers");
    } catch (err) {
      this.metrics.invalidRequests++;
      this.badChainLog.log(this.log, "warn", `virtio-rng: bad request chain ${chain.head}: ${(err as Error).message}`);
      return 0;
    }
    const length = Math.min(buffers.writableBytes, MAX_ENTROPY_PER_REQUEST);
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
    return written;
  }
}
