/**
 * Device state that several threads serve at once. A register access is answered on the thread of the vCPU that
 * exited (no wake-up of another thread: on a nested host a wake-up costs ~130 µs against a ~15 µs exit, and on a
 * VT-x host many times an exit), while the device thread runs the data path (queues, disks, taps, host input).
 * So every thread builds the same device object over one SharedArrayBuffer: the device's registers live there,
 * not in the object, and a lock in the buffer's first word serializes the threads' accesses, as a device's one
 * register file serializes bus cycles.
 *
 * A device declares its shared fields by name (sharedFields) and keeps its code as if they were plain fields;
 * everything else in the object (callbacks, loggers, fds) is the thread's own.
 */
import { isMainThread } from "node:worker_threads";

/** Word 0 of every device's buffer is its lock; fields start at word 1. */
const LOCK_WORD = 0;
export const FIRST_FIELD_WORD = 1;

/** Lock word values (Drepper, "Futexes Are Tricky", mutex 2): free, held, held with sleepers. */
const FREE = 0;
const HELD = 1;
const CONTENDED = 2;
/** Checks before sleeping: a holder is inside a register access, a few hundred nanoseconds. */
const SPINS = 200;
/** Atomics.wait is refused on Node's main thread; there (unit tests, the CLI's own calls) a waiter only spins. */
const canSleep = !isMainThread;

/** The words and bytes of one device's shared state. */
export class SharedState {
  readonly words: Int32Array;
  readonly bytes: Uint8Array;

  /** `words`: how many 32-bit words (the lock's included); the buffer is `words * 4 + bytes` long. */
  static allocate(words: number, bytes = 0): SharedArrayBuffer {
    return new SharedArrayBuffer(words * 4 + bytes);
  }

  /** Over a buffer another thread allocated: `words` must be what it was allocated with. */
  constructor(readonly buffer: SharedArrayBuffer, words: number) {
    if (buffer.byteLength < words * 4) throw new RangeError(`shared device state of ${buffer.byteLength} bytes is too small for ${words} words`);
    this.words = new Int32Array(buffer, 0, words);
    this.bytes = new Uint8Array(buffer, words * 4);
  }

  /** Takes the device's lock; pair with unlock() in a finally. Not reentrant. */
  lock(): void {
    const w = this.words;
    if (Atomics.compareExchange(w, LOCK_WORD, FREE, HELD) === FREE) return;
    for (let i = 0; i < SPINS; i++) {
      if (Atomics.load(w, LOCK_WORD) === FREE && Atomics.compareExchange(w, LOCK_WORD, FREE, HELD) === FREE) return;
    }
    while (Atomics.exchange(w, LOCK_WORD, CONTENDED) !== FREE) {
      if (canSleep) Atomics.wait(w, LOCK_WORD, CONTENDED);
    }
  }

  /** Runs `work` holding the lock (for the cold entry points: snapshots, host input; register accesses lock inline). */
  locked<T>(work: () => T): T {
    this.lock();
    try {
      return work();
    } finally {
      this.unlock();
    }
  }

  unlock(): void {
    if (Atomics.sub(this.words, LOCK_WORD, 1) !== HELD) {
      Atomics.store(this.words, LOCK_WORD, FREE);
      Atomics.notify(this.words, LOCK_WORD, 1);
    }
  }
}

export type FieldKind = "int" | "uint" | "bool";

/**
 * Makes each named field of `cls` an accessor of one word of `this.shared`, in order from word
 * `first` (default FIRST_FIELD_WORD); returns the next free word. The class declares the fields with
 * `declare` so that no own property hides the accessors. Reads and writes are plain (not atomic): they happen
 * under the device's lock, whose atomic operations order them between threads.
 */
export function sharedFields(cls: { prototype: object }, fields: Record<string, FieldKind>, first = FIRST_FIELD_WORD): number {
  let at = first;
  for (const [name, kind] of Object.entries(fields)) {
    const index = at++;
    const get =
      kind === "bool" ? function (this: { shared: SharedState }) { return this.shared.words[index] !== 0; }
      : kind === "uint" ? function (this: { shared: SharedState }) { return this.shared.words[index] >>> 0; }
      : function (this: { shared: SharedState }) { return this.shared.words[index]; };
    Object.defineProperty(cls.prototype, name, {
      get,
      set(this: { shared: SharedState }, v: number | boolean) {
        this.shared.words[index] = typeof v === "boolean" ? (v ? 1 : 0) : v;
      },
      configurable: false,
      enumerable: false,
    });
  }
  return at;
}

/** Counters several threads add to: plain object snapshots for metrics, one word each. */
export class SharedCounters<K extends string> {
  constructor(private readonly shared: SharedState, private readonly first: number, private readonly names: readonly K[]) {}

  bump(name: K, by = 1): void {
    Atomics.add(this.shared.words, this.first + this.names.indexOf(name), by);
  }

  /** The counters now, as a fresh object. */
  read(): Record<K, number> {
    const out = {} as Record<K, number>;
    this.names.forEach((n, i) => { out[n] = Atomics.load(this.shared.words, this.first + i) >>> 0; });
    return out;
  }

  /** How many words `names` take. */
  static words(names: readonly string[]): number {
    return names.length;
  }
}
