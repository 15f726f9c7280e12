/**
 * A bounded first-in first-out queue of bytes over one fixed ring buffer: the UART's FIFOs and host
 * input buffer and the i8042's output buffer. It never grows, so a guest or host that floods a device
 * cannot make the VMM allocate. Its ring and its two counters may live in a device's shared state
 * (shared-state.ts), read and written under the device's lock by whichever thread serves it.
 */
import type { SharedState } from "../shared-state.js";

/** Where a shared queue keeps itself: two words (head, count) and `capacity` bytes of its device's state. */
export interface ByteQueuePlace {
  shared: SharedState;
  word: number;
  byte: number;
}

export class ByteQueue {
  private readonly ring: Uint8Array;
  private readonly cells: Int32Array;
  private readonly at: number;

  /** How many words a shared queue takes (ByteQueuePlace.word). */
  static readonly WORDS = 2;

  constructor(readonly capacity: number, place?: ByteQueuePlace) {
    if (!Number.isSafeInteger(capacity) || capacity <= 0) {
      throw new RangeError(`byte queue capacity must be a positive integer, got ${capacity}`);
    }
    if (place) {
      this.ring = place.shared.bytes.subarray(place.byte, place.byte + capacity);
      this.cells = place.shared.words;
      this.at = place.word;
    } else {
      this.ring = new Uint8Array(capacity);
      this.cells = new Int32Array(2);
      this.at = 0;
    }
  }

  private get head(): number {
    return this.cells[this.at];
  }

  private set head(v: number) {
    this.cells[this.at] = v;
  }

  get length(): number {
    return this.cells[this.at + 1];
  }

  private set count(v: number) {
    this.cells[this.at + 1] = v;
  }

  /** Bytes that can still be pushed. */
  get free(): number {
    return this.capacity - this.length;
  }

  /** Appends `byte` (low 8 bits); returns false, changing nothing, when the queue is full. */
  push(byte: number): boolean {
    const count = this.length;
    if (count === this.capacity) return false;
    this.ring[(this.head + count) % this.capacity] = byte;
    this.count = count + 1;
    return true;
  }

  /** Removes and returns the oldest byte, or undefined when empty. */
  shift(): number | undefined {
    const count = this.length;
    if (count === 0) return undefined;
    const head = this.head;
    const byte = this.ring[head];
    this.head = (head + 1) % this.capacity;
    this.count = count - 1;
    return byte;
  }

  /** The oldest byte without removing it, or undefined when empty. */
  peek(): number | undefined {
    return this.length === 0 ? undefined : this.ring[this.head];
  }

  /** The queued bytes, oldest first, without removing them (saved state). */
  toArray(): number[] {
    const head = this.head;
    return Array.from({ length: this.length }, (_, i) => this.ring[(head + i) % this.capacity]);
  }

  clear(): void {
    this.head = 0;
    this.count = 0;
  }
}
