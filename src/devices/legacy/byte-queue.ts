/**
 * A bounded first-in first-out queue of bytes over one fixed ring buffer: the UART's FIFOs and host
 * input buffer and the i8042's output buffer. It never grows, so a guest or host that floods a device
 * cannot make the VMM allocate.
 */
export class ByteQueue {
  private readonly ring: Uint8Array;
  private head = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity <= 0) {
      throw new RangeError(`byte queue capacity must be a positive integer, got ${capacity}`);
    }
    this.ring = new Uint8Array(capacity);
  }

  get length(): number {
    return this.count;
  }

  /** Bytes that can still be pushed. */
  get free(): number {
    return this.capacity - this.count;
  }

  /** Appends `byte` (low 8 bits); returns false, changing nothing, when the queue is full. */
  push(byte: number): boolean {
    if (this.count === this.capacity) return false;
    this.ring[(this.head + this.count) % this.capacity] = byte;
    this.count++;
    return true;
  }

  /** Removes and returns the oldest byte, or undefined when empty. */
  shift(): number | undefined {
    if (this.count === 0) return undefined;
    const byte = this.ring[this.head];
    this.head = (this.head + 1) % this.capacity;
    this.count--;
    return byte;
  }

  /** The queued bytes, oldest first, without removing them (saved state). */
  toArray(): number[] {
    return Array.from({ length: this.count }, (_, i) => this.ring[(this.head + i) % this.capacity]);
  }

  clear(): void {
    this.head = 0;
    this.count = 0;
  }
}
