/**
 * One-shot timerfds on CLOCK_MONOTONIC (man 2 timerfd_create), close-on-exec and non-blocking: an fd the
 * device thread's epoll watches, so a device can ask to be called back later without a thread sleeping
 * or polling (Firecracker's rate limiters use one each, utils::time::TimerFd).
 */
import { close, read, timerfdCreate, timerfdSettime } from "./libc.js";
import { check } from "./errors.js";

const CLOCK_MONOTONIC = 1;
const TFD_CLOEXEC = 0o2000000;
const TFD_NONBLOCK = 0o4000;

export function newTimerFd(): number {
  return check(timerfdCreate(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK), "timerfd_create");
}

/** struct itimerspec: it_interval {tv_sec, tv_nsec}, it_value {tv_sec, tv_nsec}; the interval stays 0 (one-shot). */
const spec = new BigInt64Array(4);

/**
 * Fires once after `delayMs` (rounded up to a nanosecond, so 0 still fires: an all-zero it_value would
 * disarm); null disarms.
 */
export function armTimerFd(fd: number, delayMs: number | null): void {
  const ns = delayMs === null ? 0n : BigInt(Math.max(1, Math.ceil(delayMs * 1e6)));
  spec[2] = ns / 1_000_000_000n;
  spec[3] = ns % 1_000_000_000n;
  check(timerfdSettime(fd, 0, spec, null), "timerfd_settime", `fd ${fd}`);
}

const expirations = new BigUint64Array(1);
/** Reads (and so resets) how many times the timer fired since the last read: 0 if it has not. */
export function drainTimerFd(fd: number): bigint {
  return read(fd, expirations, 8) === 8 ? expirations[0] : 0n;
}

/** A periodic timer (the balloon's statistics polling), for threads that sleep in epoll_wait and run no JS timers. */
export class TimerFd {
  private constructor(readonly fd: number) {}

  static create(): TimerFd {
    return new TimerFd(newTimerFd());
  }

  /** Expires every `seconds` from now on; 0 disarms. */
  arm(seconds: number): void {
    const periodic = new BigInt64Array([BigInt(seconds), 0n, BigInt(seconds), 0n]);
    check(timerfdSettime(this.fd, 0, periodic, null), "timerfd_settime", `fd ${this.fd}`);
  }

  /** Consumes the expiration count (none pending is fine: the fd is non-blocking). */
  read(): void {
    drainTimerFd(this.fd);
  }

  close(): void {
    close(this.fd);
  }
}
