/** virtio-blk (virtio 1.2 §5.2): one request queue served synchronously from a DiskBackend. */
import { LogRateLimiter } from "../../log-rate-limit.js";
import type { GuestMemory } from "../../../memory/guest-memory.js";
import { COMMON_FEATURES, DEFAULT_QUEUE_SIZE, DEVICE_ID_BLOCK, readConfigBytes, serveQueue, silentLogger, type ActivateContext, type Logger, type VirtioDevice } from "../device.js";
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
/** Ranges per discard/write-zeroes request: bounds one request's work (Linux caps it at 256 itself). */
const MAX_RANGES = 64;
/** Sectors per range: the whole u32 field, as the host file system does the work in one fallocate. */
const MAX_RANGE_SECTORS = 0xffff_ffff;
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
}

export interface BlockDeviceOptions {
  disk: DiskBackend;
  /** Serial reported by GET_ID (at most 20 bytes are used), e.g. the drive id. */
  id?: string;
  logger?: Logger;
  /** Name for log lines, e.g. "virtio-blk rootfs". */
  name?: string;
}

export class VirtioBlock implements VirtioDevice {
  readonly deviceType = DEVICE_ID_BLOCK;
  readonly features: bigint;
  /** One request queue (virtio 1.2 §5.2.2; no VIRTIO_BLK_F_MQ). */
  readonly queueMaxSizes = [DEFAULT_QUEUE_SIZE];
  readonly metrics: BlockMetrics = {
    readOps: 0, readBytes: 0, writeOps: 0, writeBytes: 0, flushOps: 0, discardOps: 0, writeZeroesOps: 0, getIdOps: 0,
    invalidRequests: 0, rejectedRequests: 0, ioErrors: 0,
  };
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
    cfg.setUint32(CFG_MAX_DISCARD_SECTORS, MAX_RANGE_SECTORS, true);
    cfg.setUint32(CFG_MAX_DISCARD_SEG, MAX_RANGES, true);
    cfg.setUint32(CFG_DISCARD_SECTOR_ALIGNMENT, DISCARD_ALIGNMENT_SECTORS, true);
    cfg.setUint32(CFG_MAX_WRITE_ZEROES_SECTORS, MAX_RANGE_SECTORS, true);
    cfg.setUint32(CFG_MAX_WRITE_ZEROES_SEG, MAX_RANGES, true);
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
  }

  processQueue(index: number): void {
    if (!this.active || index !== 0) return;
    serveQueue(this.active.queue, this.active.interrupt, (chain) => this.serve(chain));
  }

  /** Runs one request; returns the used length (bytes written into the chain). Never throws for guest errors. */
  private serve(chain: DescriptorChain): number {
    const mem = this.active!.mem;
    let statusByte: GuestSegment | null = null;
    try {
      const { request, status } = parseRequest(mem, ChainBuffers.of(chain), MAX_RANGES);
      statusByte = status;
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

  /** DISCARD and WRITE_ZEROES (virtio 1.2 §5.2.6.2: unknown flags, and unmap on discard, are UNSUPP). */
  private executeRanges(kind: "discard" | "write-zeroes", ranges: readonly SectorRange[]): { code: number; written: number } {
    const feature = kind === "discard" ? VIRTIO_BLK_F_DISCARD : VIRTIO_BLK_F_WRITE_ZEROES;
    if (!this.negotiated(feature)) return this.unsupported(`${kind} without its feature`);
    for (const r of ranges) {
      if (r.unknownFlags !== 0 || (kind === "discard" && r.unmap)) return this.unsupported(`${kind} with flags 0x${(r.unknownFlags | (r.unmap ? 1 : 0)).toString(16)}`);
    }
    if (this.disk.readOnly) return this.reject(`${kind} on a read-only disk`);
    for (const r of ranges) {
      if (!this.inDisk(r.sector, r.sectors)) return this.reject(`${kind} of ${r.sectors} sectors at ${r.sector} is past the end`);
    }
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

