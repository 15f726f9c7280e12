/** A periodic timer as an fd (timerfd_create(2)), for threads that sleep in epoll_wait and run no JS timers. */
import { close, errno, read, timerfdCreate, timerfdSettime } from "./libc.js";
import { SysError } from "./errors.js";

const CLOCK_MONOTONIC = 1;
const TFD_NONBLOCK = 0o4000;
const TFD_CLOEXEC = 0o2000000;

export class TimerFd {
  private constructor(readonly fd: number) {}

  static create(): TimerFd {
    const fd = timerfdCreate(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0) throw new SysError("timerfd_create", errno());
    return new TimerFd(fd);
  }

  /** Expires every `seconds` from now on; 0 disarms. */
  arm(seconds: number): void {
    const spec = new BigInt64Array([BigInt(seconds), 0n, BigInt(seconds), 0n]);
    if (timerfdSettime(this.fd, 0, spec, null) !== 0) throw new SysError("timerfd_settime", errno());
  }

  /** Consumes the expiration count (EAGAIN when none is pending is fine: the fd is non-blocking). */
  read(): void {
    read(this.fd, Buffer.alloc(8), 8);
  }

  close(): void {
    close(this.fd);
  }
}
