/**
 * virtio memory balloon (virtio 1.2 §5.5), with Firecracker's host side (its devices/virtio/balloon and
 * docs/ballooning.md): the host sets a target size (`num_pages`), the guest driver gives pages to the balloon
 * (inflateq) and takes them back (deflateq), and petasan hands inflated pages back to Linux with madvise —
 * the host's memory manager frees them, and a later guest touch faults in a zero page. Optional: the stats
 * queue (VIRTIO_BALLOON_F_STATS_VQ, polled every `stats_polling_interval_s`), deflate-on-OOM
 * (VIRTIO_BALLOON_F_DEFLATE_ON_OOM, the guest's to honour) and free page reporting (VIRTIO_BALLOON_F_REPORTING:
 * the guest reports free ranges, which are discarded the same way).
 *
 * Snapshots (Firecracker's balloon persist.rs): the target and actual sizes, the polling interval (as PATCHed), the
 * stats buffer the device holds and the guest's last statistics are saved; the offered features (deflate-on-OOM,
 * statistics, reporting) come from the VM's configuration and must match.
 */
import type { GuestMemory } from "../../../memory/guest-memory.js";
import { COMMON_FEATURES, DEFAULT_QUEUE_SIZE, silentLogger, type ActivateContext, type HostIo, type Logger, type VirtioDevice } from "../device.js";
import type { DescriptorChain } from "../queue/descriptor-chain.js";
import { ChainBuffers } from "../queue/chain-buffers.js";
import type { Queue } from "../queue/queue.js";
import { LogRateLimiter } from "../../log-rate-limit.js";
import { emptyBalloonStats, GUEST_STAT_NAMES, PAGES_PER_MIB, readStats, type BalloonGuestStats } from "./stats.js";
import { DeviceStateError, StateReader } from "../../saved-state.js";

/** virtio 1.2 §5 "Device Types": traditional memory balloon. */
export const DEVICE_ID_BALLOON = 5;
/** Feature bits, virtio 1.2 §5.5.3. */
export const VIRTIO_BALLOON_F_STATS_VQ = 1n << 1n;
export const VIRTIO_BALLOON_F_DEFLATE_ON_OOM = 1n << 2n;
export const VIRTIO_BALLOON_F_FREE_PAGE_HINT = 1n << 3n;
export const VIRTIO_BALLOON_F_REPORTING = 1n << 5n;
/** Balloon PFNs are always of 4 KiB pages, whatever the guest's page size (virtio 1.2 §5.5.6). */
export const BALLOON_PFN_SHIFT = 12;
const BALLOON_PAGE = 1 << BALLOON_PFN_SHIFT;
/** Linux sends at most 256 PFNs per inflate/deflate buffer (VIRTIO_BALLOON_ARRAY_PFNS_MAX); Firecracker's MAX_PAGES_IN_DESC. */
export const MAX_PFNS_PER_CHAIN = 256;
/**
 * Config space (virtio 1.2 §5.5.4): num_pages (the target, set by the device), actual (written by the driver),
 * free_page_hint_cmd_id. poison_val is left out, as VIRTIO_BALLOON_F_PAGE_POISON is not offered (Firecracker: 12 bytes).
 */
const CONFIG_SIZE = 12;
const OFF_NUM_PAGES = 0;
const OFF_ACTUAL = 4;

/** Gives guest RAM back to the host: a later guest read sees zeros (or the file's data), never another guest's. */
export interface PageDiscarder {
  /** Discards guest range [addr, addr+len); throws if the range is not guest RAM or the host refuses. */
  discard(addr: number, len: number): void;
}

/** A periodic host timer the device watches (a timerfd in production). */
export interface IntervalTimer {
  readonly fd: number;
  /** Fires every `seconds` from now; 0 disarms. */
  arm(seconds: number): void;
  /** Consumes the expirations so far. */
  read(): void;
  close(): void;
}

export interface BalloonDeviceOptions {
  amountMib: number;
  deflateOnOom: boolean;
  /** 0 disables the statistics queue (Firecracker: it cannot be turned on or off after boot). */
  statsPollingIntervalS: number;
  freePageReporting: boolean;
  /** Guest RAM size, the most the balloon may be asked to hold. */
  guestMemMib: number;
  discarder: PageDiscarder;
  /** Required for statistics polling: fires every statsPollingIntervalS. */
  statsTimer?: IntervalTimer;
  logger?: Logger;
}

export interface BalloonMetrics {
  inflateChains: number;
  deflateChains: number;
  /** 4 KiB pages given back to the host after inflation. */
  inflatedPages: number;
  /** Bytes discarded after a free page report. */
  reportedBytes: number;
  statsUpdates: number;
  /** Chains refused as malformed (bad layout, too many PFNs, a PFN outside RAM), completed with length 0. */
  invalidRequests: number;
  /** Ranges the host would not discard (e.g. 4 KiB pieces of 2 MiB hugetlbfs pages). */
  discardFailures: number;
}

/** Firecracker's BalloonError texts for what an API caller can get wrong (devices/virtio/balloon/mod.rs). */
export class BalloonError extends Error {
  override readonly name = "BalloonError";
}

/** VirtioBalloon.saveState()'s data. */
export interface SavedBalloon {
  /** The offered features, as hex: they follow the configuration and must be the same on restore. */
  features: string;
  targetPages: number;
  actualPages: number;
  statsPollingIntervalS: number;
  /** The driver's stats buffer the device holds (returned at the next poll), or null. */
  statsHead: number | null;
  /** The guest's last figures (swap_in, free_memory, ...). */
  latestStats: Partial<BalloonGuestStats>;
}

interface Active {
  mem: GuestMemory;
  /** By queue index, as the transport numbers them. */
  queues: Queue[];
  interrupt: () => void;
  inflate: Queue;
  deflate: Queue;
  stats?: Queue;
  reporting?: Queue;
}

export class VirtioBalloon implements VirtioDevice {
  readonly deviceType = DEVICE_ID_BALLOON;
  readonly features: bigint;
  readonly queueMaxSizes: readonly number[];
  readonly metrics: BalloonMetrics = { inflateChains: 0, deflateChains: 0, inflatedPages: 0, reportedBytes: 0, statsUpdates: 0, invalidRequests: 0, discardFailures: 0 };
  private readonly config = new DataView(new ArrayBuffer(CONFIG_SIZE));
  private readonly log: Logger;
  /** The guest chooses what it puts in the queues: the lines it can trigger are rate limited per call site. */
  private readonly badInflateLog = new LogRateLimiter();
  private readonly badReportLog = new LogRateLimiter();
  private readonly badStatsLog = new LogRateLimiter();
  private readonly discarder: PageDiscarder;
  private readonly timer?: IntervalTimer;
  private readonly guestMemMib: number;
  private pollingIntervalS: number;
  private active: Active | null = null;
  /** The stats buffer the driver gave, held until the next poll returns it (virtio 1.2 §5.5.6.3). */
  private statsHead: number | null = null;
  private latest: BalloonGuestStats = emptyBalloonStats();
  private discardFailureLogged = false;

  constructor(options: BalloonDeviceOptions) {
    this.log = options.logger ?? silentLogger;
    this.discarder = options.discarder;
    this.timer = options.statsTimer;
    this.guestMemMib = options.guestMemMib;
    this.pollingIntervalS = options.statsPollingIntervalS;
    let features = COMMON_FEATURES;
    if (options.deflateOnOom) features |= VIRTIO_BALLOON_F_DEFLATE_ON_OOM;
    if (options.statsPollingIntervalS > 0) features |= VIRTIO_BALLOON_F_STATS_VQ;
    if (options.freePageReporting) features |= VIRTIO_BALLOON_F_REPORTING;
    this.features = features;
    // inflateq, deflateq, then statsq and reporting_vq when offered (virtio 1.2 §5.5.2; free_page_vq is not offered).
    const queues = 2 + (options.statsPollingIntervalS > 0 ? 1 : 0) + (options.freePageReporting ? 1 : 0);
    this.queueMaxSizes = Array.from({ length: queues }, () => DEFAULT_QUEUE_SIZE);
    this.setTargetPages(this.pagesOf(options.amountMib));
  }

  readConfig(offset: number, data: Uint8Array): void {
    data.fill(0);
    const bytes = new Uint8Array(this.config.buffer);
    if (offset >= 0 && offset < CONFIG_SIZE) data.set(bytes.subarray(offset, Math.min(CONFIG_SIZE, offset + data.length)));
  }

  /** The driver may write only `actual` (virtio 1.2 §5.5.6.1); other writes are ignored. */
  writeConfig(offset: number, data: Uint8Array): void {
    if (offset !== OFF_ACTUAL || data.length !== 4) return;
    this.config.setUint32(OFF_ACTUAL, new DataView(data.buffer, data.byteOffset, 4).getUint32(0, true), true);
  }

  /** Linux numbers only the queues of negotiated features (virtio_mmio find_vqs skips the others): those come first. */
  queuesNeeded(ackedFeatures: bigint): number {
    return 2 + ((ackedFeatures & VIRTIO_BALLOON_F_STATS_VQ) !== 0n ? 1 : 0) + ((ackedFeatures & VIRTIO_BALLOON_F_REPORTING) !== 0n ? 1 : 0);
  }

  activate(ctx: ActivateContext): void {
    // Queue indexes follow the negotiated features: Linux numbers only the queues it sets up (virtio_mmio find_vqs).
    const [inflate, deflate, ...rest] = ctx.queues;
    const stats = (ctx.ackedFeatures & VIRTIO_BALLOON_F_STATS_VQ) !== 0n ? rest.shift() : undefined;
    const reporting = (ctx.ackedFeatures & VIRTIO_BALLOON_F_REPORTING) !== 0n ? rest.shift() : undefined;
    this.active = { mem: ctx.mem, queues: ctx.queues, interrupt: ctx.interrupt, inflate, deflate, stats, reporting };
    if (stats) {
      // Linux primes the stats queue and kicks it before it sets DRIVER_OK (virtio_balloon.c init_vqs: "Prime this
      // virtqueue with one buffer"), a kick the transport drops while the device is not running: take that buffer now.
      this.takeStats(ctx.mem, stats);
      this.timer?.arm(this.pollingIntervalS);
    }
  }

  reset(): void {
    this.active = null;
    this.statsHead = null;
    this.timer?.arm(0);
    this.config.setUint32(OFF_ACTUAL, 0, true);
  }

  attachHost(io: HostIo): void {
    const timer = this.timer;
    if (timer) io.watch(timer.fd, () => {
      timer.read();
      this.requestStats();
    });
  }

  close(): void {
    this.timer?.close();
  }

  processQueue(index: number): void {
    const a = this.active;
    if (!a) return;
    const queue = a.queues[index];
    // A queue the driver did not set up (its feature was declined): nothing to serve.
    if (queue === undefined) return;
    if (queue === a.inflate) this.serve(queue, (chain) => this.inflate(a.mem, chain));
    else if (queue === a.deflate) this.serve(queue, () => void this.metrics.deflateChains++);
    else if (queue === a.reporting) this.serve(queue, (chain) => this.report(chain));
    else if (queue === a.stats) this.takeStats(a.mem, queue);
  }

  /** What a snapshot holds of the balloon besides its transport's state and guest RAM. */
  saveState(): SavedBalloon {
    const { target_pages: _t, actual_pages: _a, target_mib: _tm, actual_mib: _am, ...guestStats } = this.latest;
    return {
      features: `0x${this.features.toString(16)}`,
      targetPages: this.config.getUint32(OFF_NUM_PAGES, true),
      actualPages: this.config.getUint32(OFF_ACTUAL, true),
      statsPollingIntervalS: this.pollingIntervalS,
      statsHead: this.statsHead,
      latestStats: guestStats,
    };
  }

  /** Takes back saveState()'s data before the transport reactivates the device (which re-arms the stats timer). */
  restoreState(saved: unknown): void {
    const name = "virtio-balloon";
    const r = new StateReader(saved, name);
    if (r.u64("features") !== this.features) {
      throw new DeviceStateError(`${name}: the snapshot's balloon offered other features (deflate_on_oom, statistics or free page reporting differ)`);
    }
    const targetPages = r.int("targetPages", 0, this.guestMemMib * PAGES_PER_MIB);
    const actualPages = r.int("actualPages", 0, 0xffff_ffff);
    const interval = r.int("statsPollingIntervalS", 0, 0xffff);
    if ((interval === 0) !== (this.pollingIntervalS === 0)) throw new DeviceStateError(`${name}: statistics are ${interval === 0 ? "off" : "on"} in the snapshot, ${this.pollingIntervalS === 0 ? "off" : "on"} here`);
    const head = r.raw("statsHead");
    const statsQueueSize = this.pollingIntervalS > 0 ? this.queueMaxSizes[2] : 0;
    if (head !== null && !(Number.isInteger(head) && (head as number) >= 0 && (head as number) < statsQueueSize)) {
      throw new DeviceStateError(`${name}: saved "statsHead" must be null or a descriptor index below ${statsQueueSize}`);
    }
    const stats = r.raw("latestStats");
    if (typeof stats !== "object" || stats === null || Array.isArray(stats)) throw new DeviceStateError(`${name}: saved "latestStats" is not an object`);
    const latest = emptyBalloonStats();
    for (const [k, v] of Object.entries(stats)) {
      if (!(GUEST_STAT_NAMES as readonly string[]).includes(k) || typeof v !== "number" || !(v >= 0)) throw new DeviceStateError(`${name}: saved statistic "${k}" is not a known, non-negative figure`);
      (latest as unknown as Record<string, number>)[k] = v;
    }
    this.setTargetPages(targetPages);
    this.config.setUint32(OFF_ACTUAL, actualPages, true);
    this.pollingIntervalS = interval;
    this.statsHead = head as number | null;
    this.latest = latest;
  }

  /** The target in MiB (GET /balloon's amount_mib). */
  get targetMib(): number {
    return Math.floor(this.config.getUint32(OFF_NUM_PAGES, true) / PAGES_PER_MIB);
  }

  get statsPollingIntervalS(): number {
    return this.pollingIntervalS;
  }

  /** PATCH /balloon: a new target, announced with a configuration change interrupt by the caller (the transport). */
  setTargetMib(amountMib: number): void {
    if (!this.active) throw new BalloonError("Device not activated yet.");
    this.setTargetPages(this.pagesOf(amountMib));
  }

  /**
   * PATCH /balloon/statistics: a new polling interval, with a statistics request now (as Firecracker). Statistics
   * cannot be turned on or off after the device is built: the stats queue exists or not.
   */
  setStatsPollingInterval(seconds: number): void {
    if (seconds === this.pollingIntervalS) return;
    if (seconds === 0 || this.pollingIntervalS === 0) throw new BalloonError("Statistics cannot be enabled/disabled after activation.");
    this.pollingIntervalS = seconds;
    this.requestStats();
    if (this.active?.stats) this.timer?.arm(seconds);
  }

  /** GET /balloon/statistics: the guest's last report, with the target and actual sizes now. */
  statistics(): BalloonGuestStats {
    if (this.pollingIntervalS === 0) throw new BalloonError("Statistics are not enabled (stats_polling_interval_s is 0).");
    const target = this.config.getUint32(OFF_NUM_PAGES, true);
    const actual = this.config.getUint32(OFF_ACTUAL, true);
    return { ...this.latest, target_pages: target, actual_pages: actual, target_mib: Math.floor(target / PAGES_PER_MIB), actual_mib: Math.floor(actual / PAGES_PER_MIB) };
  }

  /** Gives the held stats buffer back, which asks the driver for fresh statistics (virtio 1.2 §5.5.6.3). */
  requestStats(): void {
    const stats = this.active?.stats;
    if (!stats || this.statsHead === null) return;
    stats.addUsed(this.statsHead, 0);
    this.statsHead = null;
    if (stats.needsNotification()) this.active!.interrupt();
  }

  private pagesOf(amountMib: number): number {
    if (!Number.isInteger(amountMib) || amountMib < 0 || amountMib > this.guestMemMib) {
      throw new BalloonError(`Requested memory should be less than ${this.guestMemMib}MiB`);
    }
    return amountMib * PAGES_PER_MIB;
  }

  private setTargetPages(pages: number): void {
    this.config.setUint32(OFF_NUM_PAGES, pages, true);
  }

  private serve(queue: Queue, handle: (chain: DescriptorChain) => void): void {
    let served = false;
    for (let chain = queue.pop(); chain; chain = queue.pop()) {
      handle(chain);
      queue.addUsed(chain.head, 0);
      served = true;
    }
    if (served && queue.needsNotification()) this.active!.interrupt();
  }

  /**
   * An inflate buffer: up to 256 le32 PFNs of 4 KiB pages the guest no longer uses. They are sorted and merged into
   * ranges, so a balloon of N contiguous MiB costs one madvise, not N*256.
   */
  private inflate(mem: GuestMemory, chain: DescriptorChain): void {
    this.metrics.inflateChains++;
    let pfns: Uint32Array;
    try {
      const { readable, readableBytes } = ChainBuffers.of(chain);
      if (readableBytes % 4 !== 0 || readableBytes / 4 > MAX_PFNS_PER_CHAIN) throw new Error(`${readableBytes} bytes is not a list of at most ${MAX_PFNS_PER_CHAIN} PFNs`);
      pfns = new Uint32Array(readableBytes / 4);
      let at = 0;
      for (const seg of readable) {
        mem.readU32s(seg.addr, pfns.subarray(at), seg.len / 4);
        at += seg.len / 4;
      }
    } catch (e) {
      this.metrics.invalidRequests++;
      this.badInflateLog.log(this.log, "warn", () => `virtio-balloon: bad inflate chain ${chain.head}: ${(e as Error).message}`);
      return;
    }
    pfns.sort();
    for (let i = 0; i < pfns.length; ) {
      let j = i + 1;
      while (j < pfns.length && pfns[j] - pfns[j - 1] <= 1) j++;
      const first = pfns[i];
      const pages = pfns[j - 1] - first + 1;
      if (this.discard(first * BALLOON_PAGE, pages * BALLOON_PAGE)) this.metrics.inflatedPages += pages;
      i = j;
    }
  }

  /** A free page report: each buffer is a free guest range (usually 2 or 4 MiB) to give back (virtio 1.2 §5.5.6.7). */
  private report(chain: DescriptorChain): void {
    let buffers: ChainBuffers;
    try {
      buffers = ChainBuffers.of(chain);
    } catch (e) {
      this.metrics.invalidRequests++;
      this.badReportLog.log(this.log, "warn", () => `virtio-balloon: bad free page report ${chain.head}: ${(e as Error).message}`);
      return;
    }
    for (const seg of [...buffers.readable, ...buffers.writable]) {
      if (this.discard(seg.addr, seg.len)) this.metrics.reportedBytes += seg.len;
    }
  }

  /** Returns whether the host took the range back; a failure is counted, and logged once (it repeats per page). */
  private discard(addr: number, len: number): boolean {
    try {
      this.discarder.discard(addr, len);
      return true;
    } catch (e) {
      this.metrics.discardFailures++;
      if (!this.discardFailureLogged) {
        this.discardFailureLogged = true;
        this.log("warn", `virtio-balloon: guest range 0x${addr.toString(16)}+0x${len.toString(16)} was not given back to the host: ${(e as Error).message} (logged once)`);
      }
      return false;
    }
  }

  /** The driver's stats buffer: read it, and keep it until the next poll (Firecracker holds one, as QEMU does). */
  private takeStats(mem: GuestMemory, queue: Queue): void {
    for (let chain = queue.pop(); chain; chain = queue.pop()) {
      // A driver must keep one buffer outstanding; a second one returns the first (Firecracker does the same).
      if (this.statsHead !== null) {
        queue.addUsed(this.statsHead, 0);
        if (queue.needsNotification()) this.active!.interrupt();
      }
      this.statsHead = chain.head;
      this.metrics.statsUpdates++;
      try {
        this.latest = readStats(mem, ChainBuffers.of(chain).readable, this.latest);
      } catch (e) {
        this.metrics.invalidRequests++;
        this.badStatsLog.log(this.log, "warn", () => `virtio-balloon: bad stats buffer ${chain.head}: ${(e as Error).message}`);
      }
    }
  }
}
