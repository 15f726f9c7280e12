// What the console's server sends (server side: vm-registry.ts VmSummary, stats.ts StatsSample).
export type VmState = "Created" | "Starting" | "Running" | "Paused" | "Stopped";

export interface VmSummary {
  id: string;
  name: string;
  state: VmState;
  vcpus: number;
  memMib: number;
  kernel: string;
  drives: { id: string; path: string; readOnly: boolean }[];
  createdAt: number;
  startedAt?: number;
  uptimeMs?: number;
  exit?: { reason: string; exitCode: number; message: string };
  viewers: number;
  exitsTotal?: number;
  trackDirtyPages: boolean;
  restoredFrom?: { snapshotPath: string; memFilePath: string };
  lastSnapshot?: { snapshotPath: string; memFilePath: string; type: "Full" | "Diff"; at: number };
}

export const EXIT_KINDS = ["io_in", "io_out", "mmio_read", "mmio_write", "intr", "hlt", "other"] as const;

export interface StatsSample {
  t: number;
  exits: Record<(typeof EXIT_KINDS)[number], number>;
  exitsTotal: number;
  disk: { readBytes: number; writeBytes: number; readOps: number; writeOps: number };
  net: { rxBytes: number; txBytes: number; rxFrames: number; txFrames: number };
  vcpuTime: number;
}

export type ServerEvent =
  | { type: "hello"; vms: VmSummary[]; stats: Record<string, StatsSample[]> }
  | { type: "vms"; vms: VmSummary[] }
  | { type: "sample"; id: string; sample: StatsSample };
