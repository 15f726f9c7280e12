/**
 * A VM's activity as rates, for the page's plots: once a second while the VM runs (or is paused) the
 * console reads VirtualMachine.metrics() and turns the counters since boot into per-second rates: exits by
 * kind (all vCPUs), disk and network bytes and operations (all drives, all interfaces), and vCPU time (CPU
 * seconds per second, summed over vCPUs: 1.0 is one host core busy). The last HISTORY samples are kept, so a
 * page opened late shows the recent past; exit totals come with each sample.
 */
import type { VmMetrics } from "../lib/index.js";

export const SAMPLE_PERIOD_MS = 1000;
/** Five minutes at one sample a second. */
export const HISTORY = 300;

export const EXIT_KINDS = ["io_in", "io_out", "mmio_read", "mmio_write", "intr", "hlt", "other"] as const;
export type ExitKind = (typeof EXIT_KINDS)[number];

export interface StatsSample {
  /** Milliseconds since the epoch. */
  t: number;
  /** Exits per second, by kind, summed over vCPUs. */
  exits: Record<ExitKind, number>;
  /** Exits since boot, all kinds and vCPUs. */
  exitsTotal: number;
  disk: { readBytes: number; writeBytes: number; readOps: number; writeOps: number };
  net: { rxBytes: number; txBytes: number; rxFrames: number; txFrames: number };
  /** CPU seconds per second used by the vCPU threads, summed. */
  vcpuTime: number;
}

/** The counters a sample is the difference of. */
interface Totals {
  t: number;
  exits: Record<ExitKind, number>;
  disk: StatsSample["disk"];
  net: StatsSample["net"];
  vcpuTimeUs: number;
}

export class StatsHistory {
  readonly samples: StatsSample[] = [];
  private last?: Totals;

  /** Adds a sample from `metrics` read at `t`; returns it (undefined for the first reading, which has no rate). */
  add(metrics: VmMetrics, t: number): StatsSample | undefined {
    const now = totals(metrics, t);
    const before = this.last;
    this.last = now;
    if (before === undefined || now.t <= before.t) return undefined;
    const seconds = (now.t - before.t) / 1000;
    const rate = (a: number, b: number) => Math.max(0, a - b) / seconds;
    const per = <T extends Record<string, number>>(a: T, b: T): T =>
      Object.fromEntries(Object.keys(a).map((k) => [k, rate(a[k], b[k])])) as T;
    const sample: StatsSample = {
      t,
      exits: per(now.exits, before.exits),
      exitsTotal: EXIT_KINDS.reduce((sum, kind) => sum + now.exits[kind], 0),
      disk: per(now.disk, before.disk),
      net: per(now.net, before.net),
      vcpuTime: rate(now.vcpuTimeUs, before.vcpuTimeUs) / 1e6,
    };
    this.samples.push(sample);
    if (this.samples.length > HISTORY) this.samples.shift();
    return sample;
  }
}

function totals(metrics: VmMetrics, t: number): Totals {
  const exits = Object.fromEntries(EXIT_KINDS.map((kind) => [kind, metrics.vcpus.reduce((sum, vcpu) => sum + vcpu[kind], 0)])) as Record<ExitKind, number>;
  const disk = { readBytes: 0, writeBytes: 0, readOps: 0, writeOps: 0 };
  const net = { rxBytes: 0, txBytes: 0, rxFrames: 0, txFrames: 0 };
  for (const [name, device] of Object.entries(metrics.devices)) {
    if (name.startsWith("block_")) {
      const block = device as VmMetrics["devices"][`block_${string}`];
      disk.readBytes += block.readBytes;
      disk.writeBytes += block.writeBytes;
      disk.readOps += block.readOps;
      disk.writeOps += block.writeOps;
    } else if (name.startsWith("net_")) {
      const nic = device as VmMetrics["devices"][`net_${string}`];
      net.rxBytes += nic.rxBytes;
      net.txBytes += nic.txBytes;
      net.rxFrames += nic.rxFrames;
      net.txFrames += nic.txFrames;
    }
  }
  return { t, exits, disk, net, vcpuTimeUs: metrics.vcpuCpuTimeUs.reduce((a, b) => a + b, 0) };
}
