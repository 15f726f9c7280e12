/** eventfds as petasan uses them: close-on-exec, and non-blocking so draining an idle one never blocks a thread. */
import { eventfd, read, write } from "./libc.js";
import { check } from "./errors.js";

const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;

export function newEventFd(): number {
  return check(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), "eventfd");
}

const one = new BigUint64Array([1n]);
/** Adds 1 to the eventfd's counter, waking whoever polls it (or, for an irqfd, injecting the interrupt). */
export function signalEventFd(fd: number): void {
  write(fd, one, 8);
}

const counter = new BigUint64Array(1);
/** Reads (and so resets) an eventfd's counter; returns it (0 if nothing was pending). */
export function drainEventFd(fd: number): bigint {
  return read(fd, counter, 8) === 8 ? counter[0] : 0n;
}
