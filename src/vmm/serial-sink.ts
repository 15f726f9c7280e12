/**
 * Where the guest's COM1 bytes go: written synchronously by the thread that serves the THR write (a slow reader slows
 * the guest rather than losing bytes). If that breaks (the reader went away), they are dropped after one log line.
 */
import { writeSync } from "node:fs";
import type { Logger } from "./logger.js";

export function serialSink(fd: number | null, log: Logger): (bytes: Uint8Array) => void {
  if (fd === null) return () => {};
  let broken = false;
  return (bytes) => {
    if (broken) return;
    try {
      writeAll(fd, bytes);
    } catch (e) {
      broken = true;
      log("Error", `serial output stopped: ${(e as Error).message}; further guest console output is dropped`);
    }
  };
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));

/** The fd may be non-blocking (a terminal shares O_NONBLOCK with the stdin Node reads), so EAGAIN waits a little. */
function writeAll(fd: number, bytes: Uint8Array): void {
  for (let off = 0; off < bytes.length; ) {
    try {
      off += writeSync(fd, bytes, off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e;
      Atomics.wait(sleepCell, 0, 0, 1);
    }
  }
}
