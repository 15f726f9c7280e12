/**
 * The block of shared memory through which a vCPU thread and the threads around it talk while the vCPU
 * may be blocked in KVM_RUN (where no postMessage can reach it): a command word the controller sets before
 * kicking, a state word the vCPU reports, an exit-mailbox word for exits served by the device thread,
 * the vCPU thread's pthread id for kicks, and exit counters.
 */

export const enum VcpuCommand { Run = 0, Pause = 1, Stop = 2 }
export const enum VcpuState { Starting = 0, Running = 1, Paused = 2, Stopped = 3 }
/** Exit mailbox: Idle, or Pending while the vCPU waits for the device thread to serve the exit in kvm_run. */
export const enum ExitMailbox { Idle = 0, Pending = 1 }

/** Counter slots (exits by kind), as Firecracker's vcpu metrics. */
/**
 * Exits by kind (every one, as Firecracker's exit_io_in..exit_mmio_write count them), then `handed_over`: the register
 * accesses among them this thread handed to the device thread rather than serving them itself (registers.ts).
 */
export const EXIT_COUNTERS = ["io_in", "io_out", "mmio_read", "mmio_write", "intr", "hlt", "other", "handed_over", "kicks"] as const;
export type ExitCounter = (typeof EXIT_COUNTERS)[number];

const I32_WORDS = 4; // command, state, mailbox, spare
const BYTES = 64;

export class VcpuControl {
  private readonly words: Int32Array;
  private readonly pthread: BigInt64Array;
  /** Float64, not BigInt64: exact to 2^53 and no BigInt allocated per exit on the hot path. One writer (the vCPU). */
  private readonly counters: Float64Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(BYTES + EXIT_COUNTERS.length * 8)) {
    this.words = new Int32Array(buffer, 0, I32_WORDS);
    this.pthread = new BigInt64Array(buffer, 16, 1);
    this.counters = new Float64Array(buffer, BYTES, EXIT_COUNTERS.length);
  }

  get command(): VcpuCommand { return Atomics.load(this.words, 0); }
  set command(c: VcpuCommand) { Atomics.store(this.words, 0, c); Atomics.notify(this.words, 0); }
  /** Blocks while the command is still `c` (a paused vCPU waits here). */
  waitWhileCommand(c: VcpuCommand): void { Atomics.wait(this.words, 0, c); }

  get state(): VcpuState { return Atomics.load(this.words, 1); }
  set state(s: VcpuState) { Atomics.store(this.words, 1, s); Atomics.notify(this.words, 1); }
  /** Async wait (for the controlling thread, which must not block) until the state is `s`. */
  async untilState(s: VcpuState, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const now = this.state;
      if (now === s) return true;
      if (now === VcpuState.Stopped) return s === VcpuState.Stopped;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      const r = Atomics.waitAsync(this.words, 1, now, left);
      if (r.async) await r.value;
    }
  }

  get mailbox(): ExitMailbox { return Atomics.load(this.words, 2); }
  /**
   * vCPU side: post the exit, ring (wake the device thread), then sleep until the device thread has served it.
   * Waking is not proof: the device thread's notify for the previous exit can land after that exit was seen done
   * and wake this wait, so the mailbox word itself is the only answer.
   */
  postExitAndWait(ring: () => void): void {
    Atomics.store(this.words, 2, ExitMailbox.Pending);
    ring();
    while (Atomics.load(this.words, 2) === ExitMailbox.Pending) Atomics.wait(this.words, 2, ExitMailbox.Pending);
  }
  /** Device-thread side: the exit in kvm_run is served; wake the vCPU. */
  completeExit(): void {
    Atomics.store(this.words, 2, ExitMailbox.Idle);
    Atomics.notify(this.words, 2);
  }

  get pthreadId(): bigint { return Atomics.load(this.pthread, 0); }
  set pthreadId(id: bigint) { Atomics.store(this.pthread, 0, id); }

  count(c: ExitCounter): void { this.counters[EXIT_COUNTERS.indexOf(c)]++; }
  /** Fast path for the hot loop: the slot index of a counter. */
  static slot(c: ExitCounter): number { return EXIT_COUNTERS.indexOf(c); }
  bump(slot: number): void { this.counters[slot]++; }
  snapshotCounters(): Record<ExitCounter, number> {
    return Object.fromEntries(EXIT_COUNTERS.map((c, i) => [c, this.counters[i]])) as Record<ExitCounter, number>;
  }
}
