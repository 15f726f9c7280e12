/**
 * Firecracker's I/O rate limiter (src/vmm/src/rate_limiter/mod.rs), for virtio-blk, virtio-net rx/tx and
 * the entropy device: two token buckets, `bandwidth` (bytes) and `ops` (requests), each with a size, an
 * optional one-time burst spent first, and the time to refill from empty. When a bucket cannot pay, the
 * limiter is blocked for REFILL_TIMER_MS (or, after an over-consumption, for as long as the debt takes
 * to repay) and the device stops taking requests from that queue; it arms its DeviceTimer with
 * blockedForMs() and tries again when the timer fires. Nothing here sleeps or polls.
 */

/** A bucket as the API gives it (firecracker-api.yaml TokenBucket); same shape as the config's. */
export interface TokenBucketSettings {
  size: number;
  one_time_burst?: number;
  /** Milliseconds to refill the bucket from empty. */
  refill_time: number;
}

export interface RateLimiterSettings {
  bandwidth?: TokenBucketSettings;
  ops?: TokenBucketSettings;
}

export type TokenKind = "bytes" | "ops";

/** Firecracker's REFILL_TIMER_DURATION: how long a limiter whose bucket ran dry stays blocked. */
export const REFILL_TIMER_MS = 100;

/** Milliseconds from a fixed origin, monotonic; injected by tests. */
export type Clock = () => number;
const monotonicMs: Clock = () => performance.now();

export type BucketReduction = { kind: "success" } | { kind: "failure" } | { kind: "over-consumption"; ratio: number };
const SUCCESS: BucketReduction = { kind: "success" };
const FAILURE: BucketReduction = { kind: "failure" };

export class TokenBucket {
  private budget: number;
  private oneTimeBurst: number;
  private lastUpdate: number;

  /** `size` and `refillTimeMs` must be positive (a zero means "no bucket": see bucketFrom). */
  constructor(readonly size: number, readonly initialOneTimeBurst: number, readonly refillTimeMs: number, private readonly now: Clock = monotonicMs) {
    this.budget = size;
    this.oneTimeBurst = initialOneTimeBurst;
    this.lastUpdate = now();
  }

  /** Tokens available now without waiting (burst included); for tests and metrics. */
  available(): number {
    this.autoReplenish();
    return this.budget + this.oneTimeBurst;
  }

  /** Adds the tokens earned since the last update, at `size` per `refillTimeMs`, up to `size`. */
  private autoReplenish(): void {
    const now = this.now();
    const delta = now - this.lastUpdate;
    // A debt being repaid (charge) puts lastUpdate in the future: nothing is earned until then.
    if (delta <= 0) return;
    if (delta >= this.refillTimeMs) {
      this.budget = this.size;
      this.lastUpdate = now;
      return;
    }
    const tokens = Math.floor((delta * this.size) / this.refillTimeMs);
    if (tokens === 0) return;
    // Only the time those whole tokens took is used up; the remainder counts toward the next one.
    this.lastUpdate += (tokens * this.refillTimeMs) / this.size;
    this.budget = Math.min(this.budget + tokens, this.size);
  }

  /**
   * Takes `tokens`: the one-time burst first, then the budget. More than the bucket can ever hold
   * succeeds once, empties it and reports the debt as a fraction of `size` (Firecracker's OverConsumption).
   */
  reduce(tokens: number): BucketReduction {
    if (this.oneTimeBurst > 0) {
      if (this.oneTimeBurst >= tokens) {
        this.oneTimeBurst -= tokens;
        this.lastUpdate = this.now();
        return SUCCESS;
      }
      tokens -= this.oneTimeBurst;
      this.oneTimeBurst = 0;
    }
    if (tokens > this.budget) {
      this.autoReplenish();
      if (tokens > this.size) {
        const debt = tokens - this.budget;
        this.budget = 0;
        return { kind: "over-consumption", ratio: debt / this.size };
      }
      if (tokens > this.budget) return FAILURE;
    }
    this.budget -= tokens;
    return SUCCESS;
  }

  /**
   * Takes `tokens` for work already done (a frame read from a tap before its size was known): what
   * the bucket lacks becomes a debt; returns the milliseconds until it is repaid (0 when none).
   */
  charge(tokens: number): number {
    const fromBurst = Math.min(this.oneTimeBurst, tokens);
    this.oneTimeBurst -= fromBurst;
    tokens -= fromBurst;
    if (tokens > this.budget) this.autoReplenish();
    if (tokens <= this.budget) {
      this.budget -= tokens;
      return 0;
    }
    const debt = tokens - this.budget;
    this.budget = 0;
    const waitMs = (debt / this.size) * this.refillTimeMs;
    // The wait repays the debt: tokens are earned again only after it.
    this.lastUpdate = this.now() + waitMs;
    return waitMs;
  }

  /** Gives back tokens taken for a request that was then not served. */
  forceReplenish(tokens: number): void {
    if (this.oneTimeBurst > 0) {
      this.oneTimeBurst = Math.min(this.oneTimeBurst + tokens, this.initialOneTimeBurst);
      return;
    }
    this.budget = Math.min(this.budget + tokens, this.size);
  }
}

/** A bucket from its settings; none when absent or when size or refill_time is 0 (Firecracker's TokenBucket::new). */
function bucketFrom(settings: TokenBucketSettings | undefined, now: Clock): TokenBucket | undefined {
  if (!settings || settings.size === 0 || settings.refill_time === 0) return undefined;
  return new TokenBucket(settings.size, settings.one_time_burst ?? 0, settings.refill_time, now);
}

export class RateLimiter {
  private bandwidth: TokenBucket | undefined;
  private ops: TokenBucket | undefined;
  /** While set, every consume() fails until the clock passes it (Firecracker: the timer is armed). */
  private blockedUntil: number | null = null;

  constructor(settings: RateLimiterSettings | undefined, private readonly now: Clock = monotonicMs) {
    this.bandwidth = bucketFrom(settings?.bandwidth, now);
    this.ops = bucketFrom(settings?.ops, now);
  }

  /** True when `tokens` of `kind` may be spent now (and they are); false when the caller must wait. */
  consume(tokens: number, kind: TokenKind): boolean {
    if (this.blockedFor() > 0) return false;
    const bucket = kind === "bytes" ? this.bandwidth : this.ops;
    if (!bucket) return true;
    const r = bucket.reduce(tokens);
    switch (r.kind) {
      case "success":
        return true;
      case "failure":
        this.blockedUntil = this.now() + REFILL_TIMER_MS;
        return false;
      case "over-consumption":
        this.blockedUntil = this.now() + r.ratio * bucket.refillTimeMs;
        return true;
    }
  }

  /**
   * Charges `tokens` for work already done, whatever the buckets hold (virtio-net RX learns a frame's size
   * only by reading it): a debt blocks the limiter until it is repaid, and for at least REFILL_TIMER_MS, as a
   * dry bucket does. Without that floor, a steady stream above the limit woke the device thread once per frame
   * (each frame a debt of a millisecond or so: ~1000 wake-ups a second at 1.5 MB/s); with it, the tokens earned
   * meanwhile let a batch through per wake-up, ten a second, at the same rate.
   */
  consumeAfter(tokens: number, kind: TokenKind): void {
    const bucket = kind === "bytes" ? this.bandwidth : this.ops;
    if (!bucket) return;
    const waitMs = bucket.charge(tokens);
    if (waitMs > 0) this.blockedUntil = Math.max(this.blockedUntil ?? 0, this.now() + Math.max(waitMs, REFILL_TIMER_MS));
  }

  /** Returns tokens consume() took for a request that then could not go ahead (its other bucket was empty). */
  replenish(tokens: number, kind: TokenKind): void {
    (kind === "bytes" ? this.bandwidth : this.ops)?.forceReplenish(tokens);
  }

  /** Milliseconds until consume() may succeed again; 0 when it is not blocked. */
  blockedFor(): number {
    if (this.blockedUntil === null) return 0;
    const left = this.blockedUntil - this.now();
    if (left > 0) return left;
    this.blockedUntil = null;
    return 0;
  }

  /**
   * PATCH semantics (Firecracker's BucketUpdate): an absent bucket is left as it is, one with size or
   * refill_time 0 is removed, any other replaces the old one (full, with its one-time burst). A wait
   * for the old buckets ends: the next consume() asks the new ones.
   */
  update(settings: RateLimiterSettings): void {
    if (settings.bandwidth !== undefined) this.bandwidth = bucketFrom(settings.bandwidth, this.now);
    if (settings.ops !== undefined) this.ops = bucketFrom(settings.ops, this.now);
    this.blockedUntil = null;
  }
}
