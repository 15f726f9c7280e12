/**
 * A process's memory split the way the footprint bench compares VMMs (proc(5), /proc/<pid>/smaps): private
 * pages of anonymous mappings (heaps, stacks, V8's heaps) apart from the pages of file mappings (the node or
 * qemu binary and its libraries, which every process running the same binary shares), with guest RAM left out.
 *
 * Private_Clean + Private_Dirty count pages mapped by this process only; Shared_* pages that other processes
 * map too (the node binary's text, when other Node processes run). A private file mapping's copy-on-write pages
 * (relocated .data, for one) are anonymous memory inside a file mapping: smaps' "Anonymous" field.
 */
import { readFile } from "node:fs/promises";
import { BenchError } from "./bench-error.js";

export interface Footprint {
  /** Private pages of anonymous mappings, guest RAM's mappings left out. */
  privateAnonKiB: number;
  /** Private pages of file mappings (of which `cowKiB` are copy-on-write copies). */
  privateFileKiB: number;
  /** Copy-on-write (anonymous) pages inside private file mappings: private memory, counted in privateFileKiB. */
  cowKiB: number;
  /** File-mapping pages other processes map too. */
  sharedFileKiB: number;
  /** Shared pages of anonymous mappings (shared memory, or pages shared with a forked parent). */
  sharedAnonKiB: number;
  /** VmRSS from /proc/<pid>/status: everything resident, guest RAM included. */
  rssKiB: number;
  /** Resident KiB of the guest RAM mappings. */
  guestKiB: number;
  /** Bytes of the guest RAM mappings beyond the guests' sizes (neighbouring anonymous memory merged into them). */
  guestMergedKiB: number;
  threads: number;
}

interface Mapping {
  sizeKiB: number;
  perms: string;
  path: string;
  fields: Map<string, number>;
}

/** Pseudo-paths of anonymous memory in smaps ([heap], [stack], [anon:name]); [vdso]/[vvar] are the kernel's. */
function isAnonymous(m: Mapping): boolean {
  return m.path === "" || m.path === "[heap]" || m.path.startsWith("[stack") || m.path.startsWith("[anon:");
}

function parseSmaps(text: string): Mapping[] {
  const maps: Mapping[] = [];
  for (const line of text.split("\n")) {
    const header = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (header) {
      const sizeKiB = Number((BigInt(`0x${header[2]}`) - BigInt(`0x${header[1]}`)) / 1024n);
      maps.push({ sizeKiB, perms: header[3], path: header[4], fields: new Map() });
      continue;
    }
    const field = /^(\w+):\s+(\d+) kB$/.exec(line);
    if (field && maps.length > 0) maps[maps.length - 1].fields.set(field[1], Number(field[2]));
  }
  return maps;
}

/**
 * Reads /proc/<pid>/smaps and status. Guest RAM is the `guests` largest private read-write anonymous mappings
 * at least `guestBytes` long each (petasan and QEMU both map each VM's RAM below 4 GiB as one anonymous region;
 * nothing else in either process maps that much read-write).
 */
export async function readFootprint(pid: number, guestBytes: number, guests: number): Promise<Footprint> {
  const [smaps, status] = await Promise.all([readFile(`/proc/${pid}/smaps`, "utf8"), readFile(`/proc/${pid}/status`, "utf8")]);
  const maps = parseSmaps(smaps);
  const guestKiBEach = guestBytes / 1024;
  const guestMaps = maps.filter((m) => isAnonymous(m) && m.perms === "rw-p" && m.sizeKiB >= guestKiBEach)
    .sort((a, b) => b.sizeKiB - a.sizeKiB).slice(0, guests);
  if (guestMaps.length < guests) throw new BenchError(`/proc/${pid}/smaps has ${guestMaps.length} anonymous rw-p mappings of at least ${guestBytes} bytes, not ${guests} (guest RAM)`);
  const f = (m: Mapping, name: string) => m.fields.get(name) ?? 0;
  const out: Footprint = {
    privateAnonKiB: 0, privateFileKiB: 0, cowKiB: 0, sharedFileKiB: 0, sharedAnonKiB: 0, rssKiB: 0,
    guestKiB: 0, guestMergedKiB: 0, threads: 0,
  };
  for (const m of maps) {
    const priv = f(m, "Private_Clean") + f(m, "Private_Dirty");
    const shared = f(m, "Shared_Clean") + f(m, "Shared_Dirty");
    if (guestMaps.includes(m)) {
      out.guestKiB += f(m, "Rss");
      out.guestMergedKiB += m.sizeKiB - guestKiBEach;
    } else if (isAnonymous(m)) {
      out.privateAnonKiB += priv;
      out.sharedAnonKiB += shared;
    } else if (m.path.startsWith("/") || m.path.startsWith("anon_inode:")) {
      out.privateFileKiB += priv;
      out.sharedFileKiB += shared;
      out.cowKiB += f(m, "Anonymous");
    }
    // [vdso], [vvar], [vsyscall]: the kernel's pages, in no column.
  }
  const statusField = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(status);
    if (!m) throw new BenchError(`/proc/${pid}/status has no ${name} line`);
    return Number(m[1]);
  };
  out.rssKiB = statusField("VmRSS");
  out.threads = statusField("Threads");
  return out;
}
