/**
 * CPU time a thread of this process has used, read from another thread: POSIX's per-thread CPU-time clock
 * (pthread_getcpuclockid(3) then clock_gettime(2)), which Linux keeps to the nanosecond (user + system time,
 * the same figure as /proc/self/task/TID/schedstat's first field, without a file read).
 */
import { clockGettime, pthreadGetcpuclockid } from "./libc.js";
import { check } from "./errors.js";

/** Nanoseconds of CPU time used by the live thread `thread` (a pthread_t); the caller makes sure it has not exited. */
export function threadCpuTimeNs(thread: bigint): number {
  const clock = [0];
  const err = pthreadGetcpuclockid(thread, clock);
  if (err !== 0) throw new Error(`pthread_getcpuclockid failed (error ${err})`);
  const timespec = [0n, 0n];
  check(clockGettime(clock[0], timespec), "clock_gettime");
  return Number(timespec[0]) * 1e9 + Number(timespec[1]);
}
