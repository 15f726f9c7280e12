/**
 * The guest driver's side of virtio-mmio and split virtqueues, for tests: lays out rings in a
 * GuestMemory, publishes chains, reads the used ring, and programs an MmioTransport the way
 * Linux's virtio_mmio.c does (virtio 1.2 §3.1.1 driver initialization).
 */
import type { GuestMemory } from "../../../memory/guest-memory.js";
import type { InterruptLine } from "../../interrupt.js";
import type { MmioTransport } from "../mmio-transport.js";
import type { QueueLayout } from "../queue/queue.js";

export const F_NEXT = 1;
export const F_WRITE = 2;
export const F_INDIRECT = 4;

export interface TestBuffer {
  addr: number;
  len: number;
  writable?: boolean;
}

export class CountingInterrupt implements InterruptLine {
  triggers = 0;
  setLevel(): void {}
  trigger(): void {
    this.triggers++;
  }
}

/** One split virtqueue laid out at `base`: descriptor table, then avail ring, then used ring. */
export class FakeVirtqueue {
  readonly layout: QueueLayout;
  private nextFreeDesc = 0;
  private availIdx = 0;
  private usedSeen = 0;

  constructor(private readonly mem: GuestMemory, readonly size: number, base: number) {
    const availRing = base + 16 * size;
    const usedRing = (availRing + 6 + 2 * size + 3) & ~3;
    this.layout = { size, descTable: base, availRing, usedRing };
  }

  /** Bytes the layout occupies from `base`. */
  static footprint(size: number): number {
    return 16 * size + ((6 + 2 * size + 3) & ~3) + 6 + 8 * size;
  }

  setDescriptor(index: number, addr: number | bigint, len: number, flags: number, next: number, table = this.layout.descTable): void {
    const at = table + 16 * index;
    this.mem.writeU64(at, BigInt(addr));
    this.mem.writeU32(at + 8, len >>> 0);
    this.mem.writeU16(at + 12, flags);
    this.mem.writeU16(at + 14, next);
  }

  /** Writes `buffers` as a linked chain into free descriptors and publishes it; returns the head. */
  addChain(buffers: readonly TestBuffer[]): number {
    const indices = buffers.map(() => this.nextFreeDesc++ % this.size);
    buffers.forEach((b, i) => {
      const last = i === buffers.length - 1;
      this.setDescriptor(indices[i], b.addr, b.len, (b.writable ? F_WRITE : 0) | (last ? 0 : F_NEXT), last ? 0 : indices[i + 1]);
    });
    this.publish(indices[0]);
    return indices[0];
  }

  /** Writes `buffers` into an indirect table at `tableAddr` and publishes one descriptor pointing at it. */
  addIndirectChain(tableAddr: number, buffers: readonly TestBuffer[]): number {
    buffers.forEach((b, i) => {
      const last = i === buffers.length - 1;
      this.setDescriptor(i, b.addr, b.len, (b.writable ? F_WRITE : 0) | (last ? 0 : F_NEXT), last ? 0 : i + 1, tableAddr);
    });
    const head = this.nextFreeDesc++ % this.size;
    this.setDescriptor(head, tableAddr, 16 * buffers.length, F_INDIRECT, 0);
    this.publish(head);
    return head;
  }

  /** Puts `head` in the next avail slot and bumps avail idx. */
  publish(head: number): void {
    this.mem.writeU16(this.layout.availRing + 4 + 2 * (this.availIdx % this.size), head);
    this.setAvailIdx(this.availIdx + 1);
  }

  setAvailIdx(idx: number): void {
    this.availIdx = idx & 0xffff;
    this.mem.writeU16(this.layout.availRing + 2, this.availIdx);
  }

  setAvailFlags(flags: number): void {
    this.mem.writeU16(this.layout.availRing, flags);
  }

  setUsedEvent(value: number): void {
    this.mem.writeU16(this.layout.availRing + 4 + 2 * this.size, value);
  }

  availEvent(): number {
    return this.mem.readU16(this.layout.usedRing + 4 + 8 * this.size);
  }

  usedIdx(): number {
    return this.mem.readU16(this.layout.usedRing + 2);
  }

  /** Used entries the device added since the last call. */
  takeUsed(): { id: number; len: number }[] {
    const out: { id: number; len: number }[] = [];
    const idx = this.usedIdx();
    while (this.usedSeen !== idx) {
      const at = this.layout.usedRing + 4 + 8 * (this.usedSeen % this.size);
      out.push({ id: this.mem.readU32(at), len: this.mem.readU32(at + 4) });
      this.usedSeen = (this.usedSeen + 1) & 0xffff;
    }
    return out;
  }
}

/** Register-level driver for an MmioTransport. */
export class FakeMmioDriver {
  constructor(private readonly transport: MmioTransport) {}

  read(offset: number): number {
    const data = new Uint8Array(4);
    this.transport.read(offset, data);
    return new DataView(data.buffer).getUint32(0, true);
  }

  write(offset: number, value: number): void {
    const data = new Uint8Array(4);
    new DataView(data.buffer).setUint32(0, value >>> 0, true);
    this.transport.write(offset, data);
  }

  offeredFeatures(): bigint {
    this.write(0x014, 0);
    const low = BigInt(this.read(0x010));
    this.write(0x014, 1);
    return (BigInt(this.read(0x010)) << 32n) | low;
  }

  /** ACKNOWLEDGE, DRIVER, features, FEATURES_OK, queues, DRIVER_OK; returns the final status register. */
  initialize(queues: readonly FakeVirtqueue[], features = this.offeredFeatures()): number {
    this.write(0x070, 0);
    this.write(0x070, 1);
    this.write(0x070, 3);
    this.write(0x024, 0);
    this.write(0x020, Number(features & 0xffff_ffffn));
    this.write(0x024, 1);
    this.write(0x020, Number(features >> 32n));
    this.write(0x070, 0xb);
    if ((this.read(0x070) & 8) === 0) return this.read(0x070);
    queues.forEach((q, i) => {
      this.write(0x030, i);
      this.write(0x038, q.size);
      const l = q.layout;
      this.write(0x080, l.descTable % 2 ** 32);
      this.write(0x084, Math.floor(l.descTable / 2 ** 32));
      this.write(0x090, l.availRing % 2 ** 32);
      this.write(0x094, Math.floor(l.availRing / 2 ** 32));
      this.write(0x0a0, l.usedRing % 2 ** 32);
      this.write(0x0a4, Math.floor(l.usedRing / 2 ** 32));
      this.write(0x044, 1);
    });
    this.write(0x070, 0xf);
    return this.read(0x070);
  }
}

/** A DeviceTimer the test fires by hand: `armedMs` is the last delay asked for, null when disarmed. */
export class FakeTimer {
  armedMs: number | null = null;
  arms = 0;
  arm(delayMs: number): void {
    this.armedMs = delayMs;
    this.arms++;
  }
  disarm(): void {
    this.armedMs = null;
  }
  /** Clears the timer and returns whether it was armed (the test then calls transport.timerFired()). */
  take(): boolean {
    const was = this.armedMs !== null;
    this.armedMs = null;
    return was;
  }
}
