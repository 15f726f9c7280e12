/**
 * virtio-blk (virtio 1.2 §5.2): one request queue served synchronously from a DiskBackend. What one
 * request and one kick may cost is bounded (a hostile guest must not hold the device thread): chains by
 * the queue size, data by MAX_REQUEST_DATA_BYTES, DISCARD/WRITE_ZEROES by the limits the config space
 * advertises, and a kick by KICK_BUDGET_BYTES, after which the rest waits for the DeviceTimer. The
 * optional rate limiter (Firecracker's, rate-limiter.ts) charges one op and the data bytes per request.
 */
import { LogRateLimiter } from "../../log-rate-limit.js";
import type { GuestMemory } from "../../../memory/guest-memory.js";
import { COMMON_FEATURES, DEFAULT_QUEUE_SIZE, DEVICE_ID_BLOCK, noTimer, readConfigBytes, silentLogger, type ActivateContext, type DeviceTimer, type Logger, type VirtioDevice } from "../device.js";
import { RateLimiter, type RateLimiterSettings } from "../../rate-limiter.js";
import { ChainBuffers, totalLength, writeSegments, type GuestSegment } from "../queue/chain-buffers.js";
import type { DescriptorChain } from "../queue/descriptor-chain.js";
import type { Queue } from "../queue/queue.js";
import { VirtqError } from "../queue/virtq-error.js";
import { DiskIoError, type DiskBackend } from "./disk-backend.js";
import {
  BlockRequestError, parseRequest, SECTOR_SIZE, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_UNSUPP,
  type BlockRequest, type SectorRange,
} from "./request.js";

/** Feature bits, virtio 1.2 §5.2.3. */
export const VIRTIO_BLK_F_SEG_MAX = 1n << 2n;
export const VIRTIO_BLK_F_RO = 1n << 5n;
export const VIRTIO_BLK_F_BLK_SIZE = 1n << 6n;
export const VIRTIO_BLK_F_FLUSH = 1n << 9n;
export const VIRTIO_BLK_F_DISCARD = 1n << 13n;
export const VIRTIO_BLK_F_WRITE_ZEROES = 1n << 14n;

/** VIRTIO_BLK_ID_BYTES: the GET_ID answer is 20 bytes, zero-padded (virtio 1.2 §5.2.6). */
export const BLOCK_ID_BYTES = 20;

// struct virtio_blk_config offsets (virtio 1.2 §5.2.4, linux/virtio_blk.h); 60 bytes up to unused1.
const CONFIG_SIZE = 60;
const CFG_CAPACITY = 0;
const CFG_SEG_MAX = 12;
const CFG_BLK_SIZE = 20;
const CFG_MAX_DISCARD_SECTORS = 36;
const CFG_MAX_DISCARD_SEG = 40;
const CFG_DISCARD_SECTOR_ALIGNMENT = 44;
const CFG_MAX_WRITE_ZEROES_SECTORS = 48;
const CFG_MAX_WRITE_ZEROES_SEG = 52;
const CFG_WRITE_ZEROES_MAY_UNMAP = 56;

/** Data descriptors per request: the ring size minus the header and status descriptors (Linux adds those 2 to seg_max). */
const SEG_MAX = DEFAULT_QUEUE_SIZE - 2;
/**
 * DISCARD limits (config max_discard_seg, max_discard_sectors; virtio 1.2 §5.2.4): ranges per request and
 * sectors per range. A discard is a hole punched by the host file system, and the ranges of one request
 * may not overlap, so one request touches at most the disk once.
 */
export const MAX_DISCARD_SEG = 64;
export const MAX_DISCARD_SECTORS = 4 * 1024 * 1024;
/**
 * WRITE_ZEROES limits (max_write_zeroes_seg, max_write_zeroes_sectors): one range of at most 32 MiB, since
 * a file system without FALLOC_FL_ZERO_RANGE (tmpfs) makes the device write real zeros. Linux sends
 * write-zeroes requests as one range and splits them at max_write_zeroes_sectors.
 */
export const MAX_WRITE_ZEROES_SEG = 1;
export const MAX_WRITE_ZEROES_SECTORS = 64 * 1024;
/** Range descriptors parse() reads at most (the larger of the two seg limits). */
const MAX_RANGES = Math.max(MAX_DISCARD_SEG, MAX_WRITE_ZEROES_SEG);
/**
 * Bytes of disk work one kick may do before the device lets the event loop serve others (vCPU exits,
 * other devices) and goes on when its timer fires: the queue may hold 256 requests of up to 4 GiB each.
 */
export const KICK_BUDGET_BYTES = 64 * 1024 * 1024;
/** Discard granularity hint: 8 sectors = 4 KiB, the usual host file system block. */
const DISCARD_ALIGNMENT_SECTORS = 8;

export interface BlockMetrics {
  readOps: number;
  readBytes: number;
  writeOps: number;
  writeBytes: number;
  flushOps: number;
  discardOps: number;
  writeZeroesOps: number;
  getIdOps: number;
  /** Malformed chains and requests (completed with IOERR or length 0). */
  invalidRequests: number;
  /** Requests the device refused: past the end, read-only, unsupported. */
  rejectedRequests: number;
  /** Backend failures (completed with IOERR). */
  ioErrors: number;
  /** Times a request waited for the rate limiter (Firecracker's block metric of this name). */
  rate_limiter_throttled_events: number;
  /** Times a kick stopped at KICK_BUDGET_BYTES and the rest waited for the timer. */
  kickBudgetYields: number;
}

export interface BlockDeviceOptions {
  disk: DiskBackend;
  /** Serial reported by GET_ID (at most 20 bytes are used), e.g. the drive id. */
  id?: string;
  logger?: Logger;
  /** Name for log lines, e.g. "virtio-blk rootfs". */
  name?: string;
  /** Firecracker's rate_limiter for the drive; none by default. */
  rateLimiter?: RateLimiterSettings;
  /**
   * Called back (onTimer) when throttled or over the kick budget. Without one a kick serves every request
   * (no budget), and requests the rate limiter holds back wait for the next kick.
   */
  timer?: DeviceTimer;
}

export class VirtioBlock implements VirtioDevice {
  readonly deviceType = DEVICE_ID_BLOCK;
  readonly features: bigint;
  /** One request queue (virtio 1.2 §5.2.2; no VIRTIO_BLK_F_MQ). */
  readonly queueMaxSizes = [DEFAULT_QUEUE_SIZE];
  readonly metrics: BlockMetrics = {
    readOps: 0, readBytes: 0, writeOps: 0, writeBytes: 0, flushOps: 0, discardOps: 0, writeZeroesOps: 0, getIdOps: 0,
    invalidRequests: 0, rejectedRequests: 0, ioErrors: 0, rate_limiter_throttled_events: 0, kickBudgetYields: 0,
  };
  /** The drive's rate limiter; PATCH /drives updates it (updateRateLimiter). */
  readonly rateLimiter: RateLimiter;
  private readonly timer: DeviceTimer;
  /** KICK_BUDGET_BYTES per kick, or no limit when there is no timer to carry on with the rest. */
  private readonly kickBudget: number;
  /** Disk bytes the last served request cost, for the kick budget. */
  private lastCost = 0;
  private disk: DiskBackend;
  private readonly config = new Uint8Array(CONFIG_SIZE);
  private readonly id: Uint8Array;
  private capacity: number;
  private readonly log: Logger;
  /** One log rate limiter per guest-triggerable call site (log-rate-limit.ts). */
  private readonly configWriteLog = new LogRateLimiter();
  private readonly badRequestLog = new LogRateLimiter();
  private readonly ioErrorLog = new LogRateLimiter();
  private readonly rejectLog = new LogRateLimiter();
  private readonly unsupportedLog = new LogRateLimiter();
  private readonly name: string;
  private active: { mem: GuestMemory; queue: Queue; interrupt: () => void; acked: bigint } | null = null;

  constructor(options: BlockDeviceOptions) {
    this.disk = options.disk;
    this.log = options.logger ?? silentLogger;
    this.name = options.name ?? "virtio-blk";
    this.rateLimiter = new RateLimiter(options.rateLimiter);
    this.timer = options.timer ?? noTimer;
    this.kickBudget = options.timer ? KICK_BUDGET_BYTES : Infinity;
    this.id = new Uint8Array(BLOCK_ID_BYTES);
    this.id.set(new TextEncoder().encode(options.id ?? "").subarray(0, BLOCK_ID_BYTES));
    this.capacity = Math.floor(this.disk.sizeBytes / SECTOR_SIZE);

    let features = COMMON_FEATURES | VIRTIO_BLK_F_SEG_MAX | VIRTIO_BLK_F_BLK_SIZE | VIRTIO_BLK_F_FLUSH;
    if (this.disk.readOnly) features |= VIRTIO_BLK_F_RO;
    else {
      features |= VIRTIO_BLK_F_WRITE_ZEROES;
      if (this.disk.canDiscard) features |= VIRTIO_BLK_F_DISCARD;
    }
    this.features = features;

    const cfg = new DataView(this.config.buffer);
    cfg.setBigUint64(CFG_CAPACITY, BigInt(this.capacity), true);
    cfg.setUint32(CFG_SEG_MAX, SEG_MAX, true);
    cfg.setUint32(CFG_BLK_SIZE, SECTOR_SIZE, true);
    cfg.setUint32(CFG_MAX_DISCARD_SECTORS, MAX_DISCARD_SECTORS, true);
    cfg.setUint32(CFG_MAX_DISCARD_SEG, MAX_DISCARD_SEG, true);
    cfg.setUint32(CFG_DISCARD_SECTOR_ALIGNMENT, DISCARD_ALIGNMENT_SECTORS, true);
    cfg.setUint32(CFG_MAX_WRITE_ZEROES_SECTORS, MAX_WRITE_ZEROES_SECTORS, true);
    cfg.setUint32(CFG_MAX_WRITE_ZEROES_SEG, MAX_WRITE_ZEROES_SEG, true);
    cfg.setUint8(CFG_WRITE_ZEROES_MAY_UNMAP, this.disk.canDiscard ? 1 : 0);
  }

  /**
   * Serves requests from `disk` from now on (PATCH /drives after boot) and updates the capacity; the caller
   * signals the config change. Features were negotiated already, so the new disk must match read-only-ness.
   */
  replaceDisk(disk: DiskBackend): void {
    if (disk.readOnly !== this.disk.readOnly) throw new DiskIoError(`${this.name}: the new image must be ${this.disk.readOnly ? "read-only" : "writable"} like the old one`);
    this.disk = disk;
    this.capacity = Math.floor(disk.sizeBytes / SECTOR_SIZE);
    new DataView(this.config.buffer).setBigUint64(CFG_CAPACITY, BigInt(this.capacity), true);
  }

  readConfig(offset: number, data: Uint8Array): void {
    readConfigBytes(this.config, offset, data);
  }

  /** Nothing in the config space is writable without VIRTIO_BLK_F_CONFIG_WCE, which is not offered. */
  writeConfig(offset: number): void {
    this.configWriteLog.log(this.log, "warn", `${this.name}: ignored config write at ${offset}`);
  }

  activate(ctx: ActivateContext): void {
    this.active = { mem: ctx.mem, queue: ctx.queues[0], interrupt: ctx.interrupt, acked: ctx.ackedFeatures };
  }

  reset(): void {
    this.active = null;
    this.timer.disarm();
  }

  /** PATCH /drives/{id} rate_limiter: absent buckets stay, size 0 removes one; throttled requests go on at the next timer. */
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

  /**
   * Serves available requests until the queue is empty, the rate limiter says wait (the request goes back
   * on the ring and the timer is armed for when tokens are due), or the kick budget is spent (the timer
   * is armed to go on at once, after the event loop has served what else is pending). Interrupts once.
   */
  private drain(): void {
    const { queue, interrupt } = this.active!;
    let budget = this.kickBudget;
    for (;;) {
      if (budget <= 0) {
        this.metrics.kickBudgetYields++;
        this.timer.arm(0);
        break;
      }
      const chain = queue.pop();
      if (!chain) break;
      const used = this.serve(chain);
      if (used === THROTTLED) {
        queue.undoPop();
        this.metrics.rate_limiter_throttled_events++;
        this.timer.arm(this.rateLimiter.blockedFor());
        break;
      }
      queue.addUsed(chain.head, used);
      budget -= this.lastCost;
    }
    if (queue.needsNotification()) interrupt();
  }

  /**
   * Runs one request; returns the used length (bytes written into the chain), or THROTTLED when the rate
   * limiter has no tokens for it (nothing was done). Never throws for guest errors.
   */
  private serve(chain: DescriptorChain): number {
    const mem = this.active!.mem;
    let statusByte: GuestSegment | null = null;
    this.lastCost = 0;
    try {
      const { request, status } = parseRequest(mem, ChainBuffers.of(chain), MAX_RANGES);
      statusByte = status;
      if (!this.admit(request)) return THROTTLED;
      this.lastCost = requestCost(request);
      const { code, written } = this.execute(mem, request);
      mem.writeU8(status.addr, code);
      return written + 1;
    } catch (err) {
      if (err instanceof VirtqError || err instanceof BlockRequestError) {
        this.metrics.invalidRequests++;
        this.badRequestLog.log(this.log, "warn", `${this.name}: bad request in chain ${chain.head}: ${err.message}`);
      } else {
        this.metrics.ioErrors++;
        this.ioErrorLog.log(this.log, "error", `${this.name}: request in chain ${chain.head} failed: ${(err as Error).message}`);
      }
      statusByte ??= err instanceof BlockRequestError ? err.status : null;
      if (!statusByte) return 0;
      mem.writeU8(statusByte.addr, VIRTIO_BLK_S_IOERR);
      return 1;
    }
  }

  /** Returns the status code and how many data bytes went into the chain. Backend errors propagate as IOERR. */
  private execute(mem: GuestMemory, request: BlockRequest): { code: number; written: number } {
    const m = this.metrics;
    switch (request.kind) {
      case "in":
        if (!this.inDisk(request.sector, request.bytes / SECTOR_SIZE)) return this.reject(`read of ${request.bytes} bytes at sector ${request.sector} is past the end`);
        this.disk.read(mem, request.data, request.sector * SECTOR_SIZE);
        m.readOps++;
        m.readBytes += request.bytes;
        return { code: VIRTIO_BLK_S_OK, written: request.bytes };
      case "out":
        if (this.disk.readOnly) return this.reject("write to a read-only disk");
        if (!this.inDisk(request.sector, request.bytes / SECTOR_SIZE)) return this.reject(`write of ${request.bytes} bytes at sector ${request.sector} is past the end`);
        this.disk.write(mem, request.data, request.sector * SECTOR_SIZE);
        m.writeOps++;
        m.writeBytes += request.bytes;
        return { code: VIRTIO_BLK_S_OK, written: 0 };
      case "flush":
        if (!this.negotiated(VIRTIO_BLK_F_FLUSH)) return this.unsupported("FLUSH without VIRTIO_BLK_F_FLUSH");
        this.disk.flush();
        m.flushOps++;
        return { code: VIRTIO_BLK_S_OK, written: 0 };
      case "get-id": {
        const written = writeSegments(mem, request.data, this.id.subarray(0, Math.min(BLOCK_ID_BYTES, totalLength(request.data))));
        m.getIdOps++;
        return { code: VIRTIO_BLK_S_OK, written };
      }
      case "discard":
      case "write-zeroes":
        return this.executeRanges(request.kind, request.ranges);
      case "unsupported":
        return this.unsupported(`request type ${request.type}`);
    }
  }

  /**
   * Firecracker's block rate limiting: one op per request, and its data bytes for reads and writes; when
   * the bytes are not there the op is given back. False: the request must wait.
   */
  private admit(request: BlockRequest): boolean {
    if (!this.rateLimiter.consume(1, "ops")) return false;
    if ((request.kind === "in" || request.kind === "out") && !this.rateLimiter.consume(request.bytes, "bytes")) {
      this.rateLimiter.replenish(1, "ops");
      return false;
    }
    return true;
  }

  /**
   * DISCARD and WRITE_ZEROES (virtio 1.2 §5.2.6.2: unknown flags, and unmap on discard, are UNSUPP).
   * More ranges or sectors than the config space advertises (§5.2.4), and ranges that overlap (so one
   * small request cannot zero the same sectors over and over), are IOERR.
   */
  private executeRanges(kind: "discard" | "write-zeroes", ranges: readonly SectorRange[]): { code: number; written: number } {
    const feature = kind === "discard" ? VIRTIO_BLK_F_DISCARD : VIRTIO_BLK_F_WRITE_ZEROES;
    if (!this.negotiated(feature)) return this.unsupported(`${kind} without its feature`);
    for (const r of ranges) {
      if (r.unknownFlags !== 0 || (kind === "discard" && r.unmap)) return this.unsupported(`${kind} with flags 0x${(r.unknownFlags | (r.unmap ? 1 : 0)).toString(16)}`);
    }
    if (this.disk.readOnly) return this.reject(`${kind} on a read-only disk`);
    const [maxSeg, maxSectors, field] = kind === "discard" ? [MAX_DISCARD_SEG, MAX_DISCARD_SECTORS, "discard"] : [MAX_WRITE_ZEROES_SEG, MAX_WRITE_ZEROES_SECTORS, "write_zeroes"];
    if (ranges.length > maxSeg) return this.reject(`${kind} of ${ranges.length} ranges, more than max_${field}_seg ${maxSeg}`);
    for (const r of ranges) {
      if (r.sectors > maxSectors) return this.reject(`${kind} of ${r.sectors} sectors at ${r.sector}, more than max_${field}_sectors ${maxSectors}`);
      if (!this.inDisk(r.sector, r.sectors)) return this.reject(`${kind} of ${r.sectors} sectors at ${r.sector} is past the end`);
    }
    const overlap = firstOverlap(ranges);
    if (overlap) return this.reject(`${kind} ranges overlap at sector ${overlap.sector}`);
    for (const r of ranges) {
      if (kind === "discard") this.disk.discard(r.sector * SECTOR_SIZE, r.sectors * SECTOR_SIZE);
      else this.disk.writeZeroes(r.sector * SECTOR_SIZE, r.sectors * SECTOR_SIZE, r.unmap);
    }
    if (kind === "discard") this.metrics.discardOps++;
    else this.metrics.writeZeroesOps++;
    return { code: VIRTIO_BLK_S_OK, written: 0 };
  }

  private negotiated(feature: bigint): boolean {
    return (this.active!.acked & feature) !== 0n;
  }

  private inDisk(sector: number, sectors: number): boolean {
    return sector + sectors <= this.capacity;
  }

  private reject(why: string): { code: number; written: number } {
    this.metrics.rejectedRequests++;
    this.rejectLog.log(this.log, "warn", `${this.name}: ${why}`);
    return { code: VIRTIO_BLK_S_IOERR, written: 0 };
  }

  private unsupported(why: string): { code: number; written: number } {
    this.metrics.rejectedRequests++;
    this.unsupportedLog.log(this.log, "debug", `${this.name}: unsupported ${why}`);
    return { code: VIRTIO_BLK_S_UNSUPP, written: 0 };
  }
}


/** serve()'s answer for a request the rate limiter holds back. */
const THROTTLED = -1;

/** Disk bytes a request moves or clears, counted against the kick budget. */
function requestCost(request: BlockRequest): number {
  if (request.kind === "in" || request.kind === "out") return request.bytes;
  if (request.kind !== "discard" && request.kind !== "write-zeroes") return 0;
  let sectors = 0;
  for (const r of request.ranges) sectors += r.sectors;
  return sectors * SECTOR_SIZE;
}

/** The later of the first two ranges found to share a sector, if any (at most MAX_RANGES ranges, sorted). */
function firstOverlap(ranges: readonly SectorRange[]): SectorRange | undefined {
  if (ranges.length < 2) return undefined;
  const sorted = [...ranges].filter((r) => r.sectors > 0).sort((a, b) => a.sector - b.sector);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i - 1].sector + sorted[i - 1].sectors > sorted[i].sector) return sorted[i];
  }
  return undefined;
}
