// Live plots of one VM's activity with uPlot: exits/s by kind, disk and network bytes/s and ops/s, vCPU time.
// Fed from the samples the server sends once a second (stats.ts on the server); the last 300 are shown.
import uPlot from "uplot";
import { EXIT_KINDS, type StatsSample } from "./types";
import { bytes, count } from "./format";

const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#9c755f"];

interface PlotSpec {
  title: string;
  series: { label: string; value: (s: StatsSample) => number; scale?: "ops" }[];
  axis: (v: number) => string;
  opsAxis?: boolean;
  /** The y range always reaches this, so an idle plot has a sensible axis (1 KiB/s, 1 %...). */
  minMax: number;
}

const PLOTS: PlotSpec[] = [
  {
    title: "Exits/s by kind",
    series: EXIT_KINDS.map((kind) => ({ label: kind, value: (s: StatsSample) => s.exits[kind] })),
    axis: count,
    minMax: 10,
  },
  {
    title: "Disk",
    series: [
      { label: "read B/s", value: (s) => s.disk.readBytes },
      { label: "write B/s", value: (s) => s.disk.writeBytes },
      { label: "read ops/s", value: (s) => s.disk.readOps, scale: "ops" },
      { label: "write ops/s", value: (s) => s.disk.writeOps, scale: "ops" },
    ],
    axis: (v) => `${bytes(v)}/s`,
    opsAxis: true,
    minMax: 1024,
  },
  {
    title: "Network",
    series: [
      { label: "rx B/s", value: (s) => s.net.rxBytes },
      { label: "tx B/s", value: (s) => s.net.txBytes },
      { label: "rx frames/s", value: (s) => s.net.rxFrames, scale: "ops" },
      { label: "tx frames/s", value: (s) => s.net.txFrames, scale: "ops" },
    ],
    axis: (v) => `${bytes(v)}/s`,
    opsAxis: true,
    minMax: 1024,
  },
  {
    title: "vCPU time",
    series: [{ label: "CPU %", value: (s) => s.vcpuTime * 100 }],
    axis: (v) => `${count(v)} %`,
    minMax: 1,
  },
];

/** Seconds since the epoch → "14:05:09". */
function clock(seconds: number): string {
  return new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
}

export class Plots {
  private readonly charts: { spec: PlotSpec; plot: uPlot }[] = [];
  private readonly resizeObserver: ResizeObserver;

  constructor(private readonly container: HTMLElement) {
    container.replaceChildren();
    for (const spec of PLOTS) {
      const box = document.createElement("div");
      box.className = "plot";
      container.append(box);
      const plot = new uPlot(this.options(spec, this.width(box)), [[], ...spec.series.map(() => [])], box);
      this.charts.push({ spec, plot });
    }
    this.resizeObserver = new ResizeObserver(() => {
      for (const { plot } of this.charts) plot.setSize({ width: this.width(plot.root.parentElement!), height: 180 });
    });
    this.resizeObserver.observe(container);
  }

  /** Shows `samples` (oldest first). */
  update(samples: readonly StatsSample[]): void {
    const xs = samples.map((s) => s.t / 1000);
    for (const { spec, plot } of this.charts) plot.setData([xs, ...spec.series.map((series) => samples.map(series.value))]);
  }

  dispose(): void {
    this.resizeObserver.disconnect();
    for (const { plot } of this.charts) plot.destroy();
    this.container.replaceChildren();
  }

  private width(box: HTMLElement): number {
    return Math.max(240, Math.floor(box.clientWidth || this.container.clientWidth / 2 - 16));
  }

  private options(spec: PlotSpec, width: number): uPlot.Options {
    const axes: uPlot.Axis[] = [{ incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300], space: 70, values: (_u, values) => values.map(clock) }, { values: (_u, values) => values.map(spec.axis), size: 70 }];
    if (spec.opsAxis) axes.push({ scale: "ops", side: 1, values: (_u, values) => values.map((v) => `${count(v)}/s`), grid: { show: false }, size: 60 });
    return {
      title: spec.title,
      width,
      height: 180,
      legend: { show: true, live: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(spec.minMax, max)] }, ops: { range: (_u, _min, max) => [0, Math.max(10, max)] } },
      axes,
      series: [
        {},
        ...spec.series.map((series, i) => ({
          label: series.label,
          scale: series.scale ?? "y",
          stroke: PALETTE[i % PALETTE.length],
          width: 1.5,
          dash: series.scale === "ops" ? [4, 3] : undefined,
          value: (_u: uPlot, v: number | null) => (v === null ? "–" : series.scale === "ops" ? count(v) : spec.axis(v)),
        })),
      ],
    };
  }
}
