/**
 * Pipes for output a worker thread writes with plain write(2) and the controlling thread reads as a Node
 * stream (the guest's serial console, log lines). Both ends are close-on-exec and non-blocking: a writer
 * whose reader stops must see EAGAIN rather than block a thread that also has to hear "stop".
 */
import { pipe2 } from "./libc.js";
import { check } from "./errors.js";

const O_CLOEXEC = 0o2000000;
const O_NONBLOCK = 0o4000;

export interface PipeFds {
  readFd: number;
  writeFd: number;
}

export function newPipe(): PipeFds {
  const fds = [0, 0];
  check(pipe2(fds, O_CLOEXEC | O_NONBLOCK), "pipe2");
  return { readFd: fds[0], writeFd: fds[1] };
}
