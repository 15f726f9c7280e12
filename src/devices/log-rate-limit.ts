/**
 * Rate limiting for log lines a guest can trigger, one limiter per call site, as Firecracker's
 * rate-limited `error!`/`warn!`/`info!` macros do (src/vmm/src/logger/rate_limited.rs): a burst of
 * 10 lines, then one line per 500 ms (10 per 5 s), so flooding one site does not hide the others.
 * The first line let through after some were dropped says how many were dropped.
 */

/** Firecracker's DEFAULT_BURST and DEFAULT_REFILL_TIME_MS. */
export const LOG_BURST = 10;
export const LOG_REFILL_MS = 5000;

/** Lines dropped by every limiter in this thread (Firecracker's logger `rate_limited_log_count` metric). */
export const logRateLimitMetrics = { rateLimitedLogCount: 0 };

export interface LogRateLimitOptions {
  burst?: number;
  refillMs?: number;
  /** Milliseconds from any fixed origin; injected by tests. */
  now?: () => number;
}

const monotonicMs = () => performance.now();

/** One call site's limiter: a token bucket of `burst` lines refilled at `burst` lines per `refillMs`. */
export class LogRateLimiter {
  private readonly periodMs: number;
  private readonly refillMs: number;
  private readonly now: () => number;
  /** GCRA's theoretical arrival time: when the bucket will be full again. */
  private tat = -Infinity;
  private suppressed = 0;

  constructor({ burst = LOG_BURST, refillMs = LOG_REFILL_MS, now = monotonicMs }: LogRateLimitOptions = {}) {
    this.periodMs = refillMs / burst;
    this.refillMs = refillMs;
    this.now = now;
  }

  /**
   * Sends `message` to `log` unless this site is over its rate; a message let through after drops
   * carries their count. `message` may be a function so a dropped line costs no formatting.
   */
  log<L>(log: (level: L, message: string) => void, level: L, message: string | (() => string)): void {
    const now = this.now();
    const next = Math.max(this.tat, now) + this.periodMs;
    if (next - now > this.refillMs) {
      this.suppressed++;
      logRateLimitMetrics.rateLimitedLogCount++;
      return;
    }
    this.tat = next;
    const text = typeof message === "function" ? message() : message;
    const dropped = this.suppressed;
    this.suppressed = 0;
    log(level, dropped > 0 ? `${text} (${dropped} similar messages suppressed by rate limiting)` : text);
  }
}
