/**
 * Firecracker-style metrics (Firecracker src/vmm/src/logger/metrics.rs): one JSON object per line,
 * written to the metrics path on FlushMetrics, periodically while the VM runs, and once more when it
 * ends. The line starts with `utc_timestamp_ms`; then the optional `id` and `properties` (MetricsConfig
 * emit_id/properties); then one object per component, under Firecracker's names where petasan has the
 * same data. Counters are increments since the previous line, as Firecracker's SharedIncMetric;
 * `latencies_us` values are the latest measurement, as its SharedStoreMetric.
 *
 * What differs from Firecracker: only the components petasan has data for appear; the `vcpu` object
 * sums all vCPUs and adds petasan's other exit kinds (exit_intr, exit_hlt, exit_other, exit_handed_over:
 * register accesses the device thread served, and kicks); device objects are the device thread's own counters under its own names (e.g. "serial"), not
 * Firecracker's per-device field sets.
 */
import { closeSync, constants, openSync, writeSync } from "node:fs";
import type { MetricsConfig } from "../config/metrics.js";

/** Firecracker's WRITE_METRICS_PERIOD_MS (firecracker/src/metrics.rs): a line every 60 s. */
export const METRICS_PERIOD_MS = 60_000;

/** What a metrics line needs from a running VM (Vmm provides both). */
export interface MetricsSource {
  /** Per vCPU, exits by kind since boot (vcpu/control.ts EXIT_COUNTERS). */
  vcpuMetrics(): Record<string, number>[];
  /** Device counters since boot, by device. */
  deviceMetrics(): Promise<Record<string, unknown>>;
}

/** The metrics file could not be opened or written. */
export class MetricsError extends Error {
  override readonly name = "MetricsError";
  constructor(readonly path: string, problem: string, options?: ErrorOptions) {
    super(`metrics ${path}: ${problem}`, options);
  }
}

/** A nested object of counters: numbers, or further objects of them. */
type CounterTree = { [key: string]: number | CounterTree };

export class MetricsRecorder {
  /** Counters bumped since the last line, by component then field (e.g. put_api_requests.actions_count). */
  private increments: Record<string, Record<string, number>> = {};
  /** Latest measurements, kept across lines. */
  private readonly latestValues: Record<string, Record<string, number>> = {};
  /** The cumulative vCPU and device counters at the last line, to turn them into increments. */
  private previousVcpu: CounterTree = {};
  private previousDevices: CounterTree = {};
  private output?: { fd: number; config: MetricsConfig };
  private periodic?: NodeJS.Timeout;
  /** Lines are built one at a time, so two flushes never compute increments from the same base. */
  private flushing: Promise<unknown> = Promise.resolve();

  constructor(private readonly instanceId: string, private readonly clock: () => number = Date.now) {}

  /**
   * Sends lines to `config.metrics_path` from now on. Opened read-write, created if absent, appending,
   * non-blocking (Firecracker utils::open_file_nonblock, plus O_APPEND so earlier lines are kept):
   * read-write so that opening a FIFO with no reader yet neither blocks nor fails.
   */
  open(config: MetricsConfig): void {
    let fd: number;
    try {
      // A new file is rw-r--r-- (before the umask): only petasan writes it.
      fd = openSync(config.metrics_path, constants.O_RDWR | constants.O_CREAT | constants.O_APPEND | constants.O_NONBLOCK, 0o644);
    } catch (error) {
      throw new MetricsError(config.metrics_path, `cannot open: ${(error as Error).message}`, { cause: error });
    }
    this.closeOutput();
    this.output = { fd, config: structuredClone(config) };
  }

  get isOpen(): boolean {
    return this.output !== undefined;
  }

  /** Adds to an incremental counter, e.g. count("put_api_requests", "actions_fails"). */
  count(component: string, field: string, by = 1): void {
    const fields = (this.increments[component] ??= {});
    fields[field] = (fields[field] ?? 0) + by;
  }

  /** Records the latest value of a measurement, e.g. record("latencies_us", "pause_vm", 850). */
  record(component: string, field: string, value: number): void {
    (this.latestValues[component] ??= {})[field] = value;
  }

  /**
   * Writes one line now (FlushMetrics); without an open output it does nothing, as Firecracker's
   * METRICS.write() before init. Throws MetricsError when the line cannot be written.
   */
  flush(source?: MetricsSource): Promise<void> {
    const done = this.flushing.then(() => this.writeLine(source));
    this.flushing = done.catch(() => undefined);
    return done;
  }

  /** Writes a line every `periodMs` until stop(); failures count as logger.missed_metrics_count. */
  startPeriodic(source: MetricsSource, periodMs = METRICS_PERIOD_MS): void {
    this.stopPeriodic();
    this.periodic = setInterval(() => {
      this.flush(source).catch(() => this.count("logger", "missed_metrics_count"));
    }, periodMs);
    // The timer alone must not keep the process alive.
    this.periodic.unref();
  }

  stopPeriodic(): void {
    clearInterval(this.periodic);
    this.periodic = undefined;
  }

  /** Stops the timer and closes the output. */
  close(): void {
    this.stopPeriodic();
    this.closeOutput();
  }

  /** The next line's object; the increments start again from here. */
  private async nextLine(source?: MetricsSource): Promise<Record<string, unknown>> {
    const devices = source === undefined ? {} : toCounterTree(await source.deviceMetrics());
    const vcpu = source === undefined ? {} : sumVcpuExits(source.vcpuMetrics());
    const line: Record<string, unknown> = { utc_timestamp_ms: this.clock() };
    const config = this.output?.config;
    if (config?.emit_id) line.id = this.instanceId;
    if (config?.properties !== undefined) line.properties = config.properties;
    line.vcpu = { failures: 0, ...difference(vcpu, this.previousVcpu) };
    for (const values of [this.increments, this.latestValues]) {
      for (const [component, fields] of Object.entries(values)) line[component] = { ...(line[component] as object | undefined), ...fields };
    }
    // Merged by component: the device thread's "logger" counters join the main thread's.
    for (const [component, fields] of Object.entries(difference(devices, this.previousDevices))) {
      line[component] = typeof fields === "object" ? { ...(line[component] as object | undefined), ...fields } : fields;
    }
    this.increments = {};
    this.previousVcpu = vcpu;
    this.previousDevices = devices;
    return line;
  }

  private async writeLine(source?: MetricsSource): Promise<void> {
    if (this.output === undefined) return;
    const { fd, config } = this.output;
    const text = `${JSON.stringify(await this.nextLine(source))}\n`;
    try {
      writeSync(fd, text);
    } catch (error) {
      this.count("logger", "metrics_fails");
      throw new MetricsError(config.metrics_path, `cannot write: ${(error as Error).message}`, { cause: error });
    }
  }

  private closeOutput(): void {
    if (this.output === undefined) return;
    closeSync(this.output.fd);
    this.output = undefined;
  }
}

/** Firecracker VcpuMetrics names the exit counters exit_<kind> and sums them over vCPUs. */
function sumVcpuExits(perVcpu: Record<string, number>[]): CounterTree {
  const total: CounterTree = {};
  for (const counters of perVcpu) {
    for (const [kind, value] of Object.entries(counters)) {
      const name = kind === "kicks" ? kind : `exit_${kind}`;
      total[name] = ((total[name] as number | undefined) ?? 0) + value;
    }
  }
  return total;
}

/** Keeps only finite numbers and objects of them (device metrics cross a thread as plain data). */
function toCounterTree(value: Record<string, unknown>): CounterTree {
  const tree: CounterTree = {};
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry === "number" && Number.isFinite(entry)) tree[key] = entry;
    else if (typeof entry === "object" && entry !== null && !Array.isArray(entry)) tree[key] = toCounterTree(entry as Record<string, unknown>);
  }
  return tree;
}

/** now − before, leaf by leaf (a counter absent before counts from 0). */
function difference(now: CounterTree, before: CounterTree): CounterTree {
  const result: CounterTree = {};
  for (const [key, value] of Object.entries(now)) {
    const earlier = before[key];
    if (typeof value === "number") result[key] = value - (typeof earlier === "number" ? earlier : 0);
    else result[key] = difference(value, typeof earlier === "object" ? earlier : {});
  }
  return result;
}
