/**
 * A process's memory as Linux reports it (proc(5): /proc/<pid>/status and /proc/<pid>/smaps), and the
 * part of it that is guest RAM: the anonymous mapping of exactly the guest's size.
 */
import { readFile } from "node:fs/promises";
import { BenchError } from "./bench-error.js";

export interface ProcessMemory {
  /** VmRSS: resident memory, all of it (shared file pages such as the node binary included). */
  rssKiB: number;
  /** RssAnon: resident anonymous memory (heaps, stacks, guest RAM). */
  anonKiB: number;
  /** RssFile: resident file-backed pages (the node binary and libraries, mostly shared with other processes). */
  fileKiB: number;
  threads: number;
}

/** Reads VmRSS, RssAnon, RssFile (kB) and Threads from /proc/<pid>/status. */
export async function readProcessMemory(pid: number): Promise<ProcessMemory> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const field = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(status);
    if (!m) throw new BenchError(`/proc/${pid}/status has no ${name} line`);
    return Number(m[1]);
  };
  return { rssKiB: field("VmRSS"), anonKiB: field("RssAnon"), fileKiB: field("RssFile"), threads: field("Threads") };
}

export interface GuestRamResidency {
  /** Resident KiB of the mapping that holds guest RAM. */
  rssKiB: number;
  /**
   * KiB of that mapping beyond the guest's size: the kernel merges adjacent anonymous mappings with
   * the same flags (a malloc arena's heap, say), so up to this much of rssKiB may not be guest RAM.
   */
  mergedExtraKiB: number;
}

/**
 * The guest RAM mapping in /proc/<pid>/smaps: the smallest private read-write anonymous mapping at
 * least `guestBytes` long (petasan maps RAM below 3 GiB as one region: src/memory/host-mapping.ts).
 */
export async function readGuestRamResidency(pid: number, guestBytes: number): Promise<GuestRamResidency> {
  const smaps = await readFile(`/proc/${pid}/smaps`, "utf8");
  let best: { size: number; rssKiB: number } | undefined;
  let candidateSize: number | undefined;
  for (const line of smaps.split("\n")) {
    const header = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (header) {
      const size = Number(BigInt(`0x${header[2]}`) - BigInt(`0x${header[1]}`));
      const anonymous = header[4] === "0" && header[5] === "";
      candidateSize = size >= guestBytes && header[3] === "rw-p" && anonymous ? size : undefined;
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && candidateSize !== undefined && (!best || candidateSize < best.size)) best = { size: candidateSize, rssKiB: Number(rss[1]) };
  }
  if (!best) throw new BenchError(`/proc/${pid}/smaps has no anonymous rw-p mapping of at least ${guestBytes} bytes (the guest RAM)`);
  return { rssKiB: best.rssKiB, mergedExtraKiB: (best.size - guestBytes) / 1024 };
}
