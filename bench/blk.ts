/**
 * virtio-blk backend throughput: petasan's VirtioBlock + FileDisk moving a file sequentially through a
 * full request queue, against plain pread/pwrite of the same file with the same request size, in the
 * same run, as a ratio (goal: petasan >= 0.8 of pread/pwrite through koffi).
 *
 *   node dist/bench/blk.js [--size-mib N] [--runs N] [--queue N] [--dir PATH] [--fdatasync]
 *
 * No VM is involved: blk-guest-driver.ts plays the guest's virtio_blk driver from the host, on real
 * mmap'd guest RAM, so the device's preadv/pwritev go to real host pages as they do under KVM. Both
 * sides run against the host page cache (nothing is dropped or opened O_DIRECT): this measures the
 * device's software path, not the disk. With --fdatasync each write pass ends with a flush (a
 * VIRTIO_BLK_T_FLUSH request; fdatasync(2) on the host sides) inside the timing.
 * Cases: 128 KiB requests as one buffer, 128 KiB as 32 page-sized segments (how page-cache pages
 * usually reach virtio_blk), and 4 KiB requests. Every side warms up untimed first (warmUp); then
 * the sides take turns in a rotating order, and medians of the runs are printed, over wall time and
 * over this process's CPU time (blk-clock.ts says why both). The temporary file is removed at the
 * end, on an error, and on Ctrl-C.
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { setImmediate as nextTurn } from "node:timers/promises";
import { join } from "node:path";
import { BenchError } from "./bench-error.js";
import { GuestRig, type Direction } from "./blk-guest-driver.js";
import { addTimings, NO_TIME, type Timing } from "./blk-clock.js";
import { hostFdatasync, hostPass, mappedBuffers, type MappedBuffers } from "./blk-host-io.js";
import { formatTable, intOption, median } from "./stats.js";

const KIB = 1024;
const MIB = 1024 * KIB;
/** The guest's page size: Linux hands page-cache pages to virtio_blk one segment per 4 KiB page. */
const PAGE = 4 * KIB;
/**
 * Warm-up before the timed runs. The device path is a few dozen JS functions that V8 optimizes only
 * after some thousands of requests (a 128 KiB pass of 256 MiB is just 2048), so petasan warms up for
 * a number of requests, over passes of at most WARM_UP_PASS_BYTES; a host side's loop is one call.
 */
const PETASAN_WARM_UP_REQUESTS = 16384;
const WARM_UP_PASS_BYTES = 64 * MIB;
/** Throughput is printed in MB/s, 10^6 bytes per second. */
const MB = 1e6;

interface Case {
  label: string;
  requestBytes: number;
  segmentBytes: number;
}

const CASES: Case[] = [
  { label: "128 KiB, 1 segment", requestBytes: 128 * KIB, segmentBytes: 128 * KIB },
  { label: "128 KiB, 32 x 4 KiB", requestBytes: 128 * KIB, segmentBytes: PAGE },
  { label: "4 KiB, 1 segment", requestBytes: 4 * KIB, segmentBytes: 4 * KIB },
];

/** The host baselines: koffi pread/pwrite into one buffer (the goal's yardstick), koffi over one buffer per queue slot, Node's fs. */
type Side = "petasan" | "koffi" | "koffi-ring" | "node-fs";
const SIDES: Side[] = ["petasan", "koffi", "koffi-ring", "node-fs"];

interface Options {
  fileBytes: number;
  runs: number;
  queueSize: number;
  dir: string;
  fdatasync: boolean;
}

/** Every timed run of one case and direction, per side, plus the share of petasan's wall time spent in the device. */
interface Samples {
  perSide: Record<Side, Timing[]>;
  petasanDeviceShare: number[];
}

function parseOptions(argv: readonly string[]): Options {
  const dirAt = argv.indexOf("--dir");
  if (dirAt >= 0 && !argv[dirAt + 1]) throw new BenchError("--dir needs a directory");
  return {
    fileBytes: intOption(argv, "size-mib", 256) * MIB,
    runs: intOption(argv, "runs", 3),
    queueSize: intOption(argv, "queue", 128),
    dir: dirAt >= 0 ? argv[dirAt + 1] : tmpdir(),
    fdatasync: argv.includes("--fdatasync"),
  };
}

/** Writes `bytes` of non-zero data, so every block is allocated and in the page cache before the runs. */
function createDiskFile(path: string, bytes: number): void {
  const chunk = Buffer.alloc(MIB, 0xa5);
  const fd = openSync(path, "w");
  try {
    for (let done = 0; done < bytes; done += chunk.length) writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - done), done);
  } finally {
    closeSync(fd);
  }
}

/** What a case's passes run against: the device rig, a host fd on the same file, and the host sides' buffers. */
interface CaseRig {
  guest: GuestRig;
  fd: number;
  oneBuffer: MappedBuffers;
  ringBuffers: MappedBuffers;
}

/** One pass of `side`; `deviceShare` (of the wall time) is set for petasan only. */
function timedPass(side: Side, direction: Direction, rig: CaseRig, bytes: number, fdatasync: boolean): { total: Timing; deviceShare?: number } {
  const flushes = fdatasync && direction === "write";
  if (side === "petasan") {
    const t = rig.guest.pass(direction, bytes);
    const flush = flushes ? rig.guest.flush() : NO_TIME;
    const total = addTimings(t.total, flush);
    return { total, deviceShare: (t.deviceWallNs + flush.wallNs) / total.wallNs };
  }
  const api = side === "node-fs" ? "node-fs" : "koffi";
  const pass = hostPass(api, direction, rig.fd, (side === "koffi-ring" ? rig.ringBuffers : rig.oneBuffer).buffers, bytes);
  return { total: addTimings(pass, flushes ? hostFdatasync(api, rig.fd) : NO_TIME) };
}

/** Proves data really moves: a host-written pattern comes back through a device read, and a device write lands in the file. */
function checkDataPath(rig: GuestRig, fd: number, requestBytes: number): void {
  const pattern = Buffer.alloc(requestBytes);
  for (let i = 0; i < requestBytes; i += 4) pattern.writeUInt32LE(Math.imul(i, 0x9e3779b1) >>> 0, i);
  hostPass("koffi", "write", fd, [pattern], requestBytes);
  rig.pass("read", requestBytes);
  // The first request of a pass goes to slot 0 (blk-guest-driver.ts hands slots out lowest first).
  if (!pattern.equals(rig.slotData(0, requestBytes))) throw new BenchError("virtio-blk read returned other bytes than the file holds");
  rig.pass("write", requestBytes);
  const back = Buffer.alloc(requestBytes);
  hostPass("koffi", "read", fd, [back], requestBytes);
  if (!back.equals(rig.slotData(0, requestBytes))) throw new BenchError("virtio-blk write did not reach the file");
}

/** Untimed passes until `side`'s code is optimized (see PETASAN_WARM_UP_REQUESTS). */
function warmUp(side: Side, direction: Direction, rig: CaseRig, c: Case, fileBytes: number): void {
  const passBytes = Math.min(WARM_UP_PASS_BYTES, fileBytes);
  const requests = side === "petasan" ? PETASAN_WARM_UP_REQUESTS : passBytes / c.requestBytes;
  for (let done = 0; done < requests; done += passBytes / c.requestBytes) timedPass(side, direction, rig, passBytes, false);
}

/** Runs every side of case `c`; yields to the event loop between passes so Ctrl-C (SIGINT) can clean up. */
async function measureCase(c: Case, options: Options, diskPath: string): Promise<Record<Direction, Samples>> {
  const guest = new GuestRig({ diskPath, queueSize: options.queueSize, requestBytes: c.requestBytes, segmentBytes: c.segmentBytes });
  const fd = openSync(diskPath, "r+");
  const rig: CaseRig = { guest, fd, oneBuffer: mappedBuffers(1, c.requestBytes, 0x3c), ringBuffers: mappedBuffers(options.queueSize, c.requestBytes, 0x3c) };
  try {
    checkDataPath(guest, fd, c.requestBytes);
    const samples = {} as Record<Direction, Samples>;
    for (const direction of ["read", "write"] as const) {
      for (const side of SIDES) {
        warmUp(side, direction, rig, c, options.fileBytes);
        await nextTurn();
      }
      const s: Samples = { perSide: { petasan: [], koffi: [], "koffi-ring": [], "node-fs": [] }, petasanDeviceShare: [] };
      for (let run = 0; run < options.runs; run++) {
        // Rotate who goes first, so drift on a shared machine favours no side.
        for (let k = 0; k < SIDES.length; k++) {
          const side = SIDES[(run + k) % SIDES.length];
          const r = timedPass(side, direction, rig, options.fileBytes, options.fdatasync);
          s.perSide[side].push(r.total);
          if (r.deviceShare !== undefined) s.petasanDeviceShare.push(r.deviceShare);
          await nextTurn();
        }
      }
      samples[direction] = s;
    }
    return samples;
  } finally {
    rig.ringBuffers.release();
    rig.oneBuffer.release();
    closeSync(fd);
    guest.close();
  }
}

type Metric = keyof Timing;

/** Median throughput over `metric` (wall or CPU time) of `timings`, in bytes per second. */
function rate(timings: readonly Timing[], metric: Metric, bytes: number): number {
  return median(timings.map((t) => bytes / (t[metric] / 1e9)));
}

const mbps = (bytesPerSecond: number) => (bytesPerSecond / MB).toFixed(0);

/** One row per case and direction; the wall-clock table also shows petasan's share of time in the device. */
function resultTable(results: readonly { c: Case; direction: Direction; samples: Samples }[], metric: Metric, bytes: number, queueSize: number): string {
  const withShare = metric === "wallNs";
  const rows = [["case", "op", "petasan", ...(withShare ? ["in device"] : []), "koffi", `koffi, ${queueSize} bufs`, "node fs", "ratio", `vs ${queueSize} bufs`, "vs node fs"]];
  for (const { c, direction, samples } of results) {
    const side = (s: Side) => rate(samples.perSide[s], metric, bytes);
    const petasan = side("petasan");
    const share = withShare ? [`${(100 * median(samples.petasanDeviceShare)).toFixed(0)}%`] : [];
    rows.push([
      c.label, direction, mbps(petasan), ...share, mbps(side("koffi")), mbps(side("koffi-ring")), mbps(side("node-fs")),
      (petasan / side("koffi")).toFixed(2), (petasan / side("koffi-ring")).toFixed(2), (petasan / side("node-fs")).toFixed(2),
    ]);
  }
  return formatTable(rows);
}

async function main(argv: readonly string[]): Promise<void> {
  const options = parseOptions(argv);
  const workDir = mkdtempSync(join(options.dir, "petasan-blk-"));
  const cleanUp = () => rmSync(workDir, { recursive: true, force: true });
  process.once("SIGINT", () => {
    cleanUp();
    process.exit(130);
  });
  try {
    const diskPath = join(workDir, "disk.img");
    createDiskFile(diskPath, options.fileBytes);
    const results = [];
    for (const c of CASES) {
      const perDirection = await measureCase(c, options, diskPath);
      for (const direction of ["read", "write"] as const) {
        const samples = perDirection[direction];
        const runs = (s: Side) => samples.perSide[s].map((t) => `${mbps(options.fileBytes / (t.wallNs / 1e9))}/${mbps(options.fileBytes / (t.cpuNs / 1e9))}`).join(" ");
        process.stderr.write(`blk: ${c.label} ${direction}, MB/s wall/cpu per run: ${SIDES.map((s) => `${s} ${runs(s)}`).join("; ")}\n`);
        results.push({ c, direction, samples });
      }
    }
    console.log(
      `virtio-blk sequential throughput in MB/s (10^6 bytes/s): ${options.fileBytes / MIB} MiB file in ${options.dir}, queue of ${options.queueSize} requests ` +
      `(indirect descriptors), median of ${options.runs} runs per side. All sides run against the host page cache (nothing dropped, no O_DIRECT)` +
      `${options.fdatasync ? "; each write pass ends with fdatasync / VIRTIO_BLK_T_FLUSH inside the timing" : ""}.`,
    );
    console.log(
      "petasan = stand-in guest driver + VirtioBlock + FileDisk (preadv/pwritev into mmap'd guest RAM); in device = share of petasan's wall time spent inside processQueue (the rest is the stand-in driver). " +
      `koffi = pread/pwrite into one buffer; koffi, ${options.queueSize} bufs = the same over one buffer per queue slot (the device's memory footprint). ` +
      "ratio = petasan / koffi (goal >= 0.8).",
    );
    console.log("\nWall clock:");
    console.log(resultTable(results, "wallNs", options.fileBytes, options.queueSize));
    console.log("\nCPU time of this process (user + system; steadier than wall time when other work shares the cores):");
    console.log(resultTable(results, "cpuNs", options.fileBytes, options.queueSize));
  } finally {
    cleanUp();
  }
}

main(process.argv.slice(2)).then(() => process.exit(0), (e) => {
  process.stderr.write(`blk: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
