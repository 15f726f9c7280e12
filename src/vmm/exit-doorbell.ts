/**
 * How a vCPU tells the device thread it posted an exit, cheaply. A thread wake-up costs more than a VM exit
 * on some hosts (~25 µs per hop measured on a nested host, bench/exit-rate), and exits come in bursts (a
 * UART byte is an LSR read then a THR write). So after serving, the device thread stays awake scanning the
 * mailboxes for a short while, and a vCPU that sees it awake skips the eventfd write; the vCPU also polls
 * its own mailbox briefly before sleeping on it. Lost wake-ups are excluded Dekker-style: a vCPU stores
 * Pending then loads `awake`; the device thread stores `awake = 0` then scans the mailboxes once more.
 * Polling only pays while every polling thread has a core of its own; otherwise a poller takes the CPU from
 * the thread it waits for, so on a host with fewer cores than vCPUs + 1 nobody polls.
 */
import { write } from "../sys/libc.js";

/** How long the device thread keeps scanning after its last served exit. */
const DEVICE_POLL_WINDOW_MS = 0.05;
/** Mailbox checks a vCPU makes before sleeping (a few µs: the device thread answers in ~1 µs when awake). */
const VCPU_SPIN_CHECKS = 2000;

export class ExitDoorbell {
  private readonly awakeWord: Int32Array;
  private readonly one = new BigUint64Array([1n]);

  /** `poll`: whether the threads may poll (see above); the same value must reach every thread. */
  constructor(readonly eventFd: number, readonly poll: boolean, readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(4)) {
    this.awakeWord = new Int32Array(buffer);
  }

  /** How many times a vCPU checks its mailbox before sleeping on it. */
  get vcpuSpinChecks(): number {
    return this.poll ? VCPU_SPIN_CHECKS : 0;
  }

  /** vCPU side, after storing Pending in its mailbox: wake the device thread unless it is already scanning. */
  ring(): void {
    if (Atomics.load(this.awakeWord, 0) === 0) write(this.eventFd, this.one, 8);
  }

  /**
   * Device side: runs `serveAll` (which returns how many exits it served) until no exit has come for
   * DEVICE_POLL_WINDOW_MS, then announces sleep and serves once more.
   */
  serveWhileBusy(serveAll: () => number): void {
    serveAll();
    if (!this.poll) return;
    Atomics.store(this.awakeWord, 0, 1);
    let lastServed = performance.now();
    while (performance.now() - lastServed < DEVICE_POLL_WINDOW_MS) {
      if (serveAll() > 0) lastServed = performance.now();
    }
    Atomics.store(this.awakeWord, 0, 0);
    serveAll();
  }
}
