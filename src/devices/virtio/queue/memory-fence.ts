/**
 * A full memory barrier for accesses to rings the guest reads and writes concurrently
 * (virtio 1.2 §2.7.13 and §2.7.14 require the device to order its ring reads after the index
 * read, its used-entry writes before the index write, and §2.7.10 an index write before the
 * event-index read).
 *
 * Guest memory is seen through plain (non-shared) ArrayBuffer views, which have no atomic
 * operations of their own. A sequentially consistent read-modify-write on any SharedArrayBuffer
 * compiles to a locked instruction on x86-64 (a full fence) and to a dmb-bracketed sequence on
 * arm64, and V8 never moves memory accesses across an Atomics operation.
 */
const fenceCell = new Int32Array(new SharedArrayBuffer(4));

export function memoryFence(): void {
  Atomics.add(fenceCell, 0, 0);
}
