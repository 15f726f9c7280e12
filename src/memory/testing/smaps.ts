/**
 * For tests: what the kernel says about one of this process's mappings, from /proc/self/smaps and numa_maps
 * (Documentation/filesystems/proc.rst): the proof that advice and placement reached Linux.
 */
import { readFileSync } from "node:fs";

export interface MappingFacts {
  /** "Rss", "AnonHugePages", "KernelPageSize", ... in kB. */
  kb: Record<string, number>;
  /** The two-letter VmFlags: "hg" (MADV_HUGEPAGE), "mg" (MADV_MERGEABLE), "ht" (hugetlbfs), ... */
  vmFlags: string[];
}

/** The smaps entry of the mapping that starts at `addr`; throws if there is none. */
export function smapsOf(addr: bigint): MappingFacts {
  const lines = readFileSync("/proc/self/smaps", "utf8").split("\n");
  const start = lines.findIndex((l) => /^[0-9a-f]+-[0-9a-f]+ /.test(l) && BigInt(`0x${l.slice(0, l.indexOf("-"))}`) === addr);
  if (start < 0) throw new Error(`no mapping starts at 0x${addr.toString(16)} in /proc/self/smaps`);
  const facts: MappingFacts = { kb: {}, vmFlags: [] };
  for (const line of lines.slice(start + 1)) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) break;
    const kb = /^(\w+):\s+(\d+) kB$/.exec(line);
    if (kb) facts.kb[kb[1]] = Number(kb[2]);
    if (line.startsWith("VmFlags:")) facts.vmFlags = line.slice("VmFlags:".length).trim().split(/\s+/);
  }
  return facts;
}

/** The memory policy numa_maps shows for the mapping at `addr` ("default", "bind:0", ...). */
export function numaPolicyOf(addr: bigint): string {
  const line = readFileSync("/proc/self/numa_maps", "utf8").split("\n").find((l) => l.startsWith(`${addr.toString(16)} `));
  if (!line) throw new Error(`no mapping at 0x${addr.toString(16)} in /proc/self/numa_maps`);
  return line.split(" ")[1];
}

/** Start addresses of this process's mappings of exactly `bytes` (to find guest RAM a VM mapped). */
export function mappingsOfSize(bytes: number): bigint[] {
  return readFileSync("/proc/self/maps", "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => l.split(" ")[0].split("-").map((x) => BigInt(`0x${x}`)))
    .filter(([start, end]) => end - start === BigInt(bytes))
    .map(([start]) => start);
}
