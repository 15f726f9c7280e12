/**
 * How a vCPU tells the device thread it posted an exit, cheaply. Waking a sleeping thread can cost far more
 * than a VM exit (on a nested 2-core host: ~130 µs per hop when idle against ~15 µs with polling,
 * bench/exit-rate), and exits come in bursts (a UART byte is an LSR read then a THR write). So after
 * serving, the device thread keeps scanning the mailboxes for a while, and a vCPU that sees it awake skips
 * the eventfd write; a vCPU also checks its own mailbox a little before sleeping on it.
 *
 * The polling window adapts as KVM's halt polling does: it grows while the next exit keeps arriving within
 * the largest window (polling would catch it), and shrinks to nothing when exits come further apart, e.g.
 * when the vCPU thread is not getting a CPU because the host is busy; there polling would only take CPU
 * time from the thread it waits for. Threads never poll unless each has a core of its own.
 *
 * No wake-up is lost, Dekker-style: a vCPU stores Pending then loads `awake`; the device thread stores
 * `awake = 0` then scans the mailboxes once more.
 */
import { signalEventFd } from "../sys/eventfd.js";

/** The first window, and the smallest one worth polling for. */
const MIN_WINDOW_MS = 0.02;
/** Exits further apart than this are not worth a spinning thread. */
const MAX_WINDOW_MS = 0.2;
/** Mailbox checks a vCPU makes before sleeping (a few µs; an awake device thread answers in ~1 µs). */
const VCPU_SPIN_CHECKS = 2000;

export class ExitDoorbell {
  private readonly awakeWord: Int32Array;
  private windowMs = 0;
  private asleepSince = 0;

  /** `poll`: whether the threads may poll at all; the same value must reach every thread. */
  constructor(readonly eventFd: number, readonly poll: boolean, readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(4)) {
    this.awakeWord = new Int32Array(buffer);
  }

  /** How many times a vCPU checks its mailbox before sleeping on it. */
  get vcpuSpinChecks(): number {
    return this.poll ? VCPU_SPIN_CHECKS : 0;
  }

  /** vCPU side, after storing Pending in its mailbox: wake the device thread unless it is scanning. */
  ring(): void {
    if (Atomics.load(this.awakeWord, 0) === 0) signalEventFd(this.eventFd);
  }

  /**
   * Device side, when woken by the eventfd: serves exits with `serveAll` (which returns how many it served),
   * keeps scanning while exits come within the window, then announces sleep and scans once more.
   */
  serveWhileBusy(serveAll: () => number): void {
    serveAll();
    if (!this.poll) return;
    this.adaptWindow(performance.now() - this.asleepSince);
    if (this.windowMs > 0) {
      Atomics.store(this.awakeWord, 0, 1);
      let lastServed = performance.now();
      while (performance.now() - lastServed < this.windowMs) {
        if (serveAll() > 0) lastServed = performance.now();
      }
      Atomics.store(this.awakeWord, 0, 0);
      serveAll();
    }
    this.asleepSince = performance.now();
  }

  /** `gapMs`: how long the device thread slept before this exit. */
  private adaptWindow(gapMs: number): void {
    if (gapMs <= MAX_WINDOW_MS) this.windowMs = Math.min(MAX_WINDOW_MS, Math.max(MIN_WINDOW_MS, this.windowMs * 2));
    else if (gapMs > this.windowMs) this.windowMs = this.windowMs / 2 < MIN_WINDOW_MS ? 0 : this.windowMs / 2;
  }
}
