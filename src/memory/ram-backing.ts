/**
 * How guest RAM is backed by host memory. Linux is petasan's memory manager (KVM's design): petasan asks for
 * the mapping and gives advice, and the kernel does the work — hugetlbfs pages (MAP_HUGETLB), transparent huge
 * pages (MADV_HUGEPAGE), same-page merging (MADV_MERGEABLE) and NUMA placement (mbind). Each request that Linux
 * refuses is an error naming the setting, never a silently weaker VM.
 */
import { readFileSync } from "node:fs";
import { errno, madvise, mbindSyscall, mmap } from "../sys/libc.js";
import { SysError } from "../sys/errors.js";
import { mapAnonymous, unmap } from "./host-mapping.js";

/** What the VMM asks of guest RAM (from machine-config's huge_pages and petasan's host options). */
export interface RamBacking {
  /**
   * "2M": hugetlbfs pages reserved at mmap time (MAP_HUGETLB|MAP_HUGE_2MB). "Transparent" and "None": anonymous
   * memory advised MADV_HUGEPAGE, so the kernel may back it with THP (whatever /sys/kernel/mm/transparent_hugepage/
   * enabled says: with "madvise" only advised ranges get THP, with "never" none).
   */
  hugePages: "None" | "Transparent" | "2M";
  /** MADV_MERGEABLE: ksmd may merge identical guest pages (only when /sys/kernel/mm/ksm/run is 1). */
  ksm?: boolean;
  /** Bind the RAM to this host NUMA node (mbind MPOL_BIND): pages are allocated there when first touched. */
  numaNode?: number;
}

export class RamBackingError extends Error {
  override readonly name = "RamBackingError";
}

const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_PRIVATE = 0x02;
const MAP_ANONYMOUS = 0x20;
const MAP_HUGETLB = 0x40000;
/** log2(2 MiB) << MAP_HUGE_SHIFT (26): the page size for MAP_HUGETLB (linux/mman.h MAP_HUGE_2MB). */
const MAP_HUGE_2MB = 21 << 26;
const MAP_FAILED = 0xffff_ffff_ffff_ffffn;
const ENOMEM = 12;
const EINVAL = 22;
export const MADV_DONTNEED = 4;
export const MADV_REMOVE = 9;
export const MADV_MERGEABLE = 12;
export const MADV_HUGEPAGE = 14;
export const HUGE_PAGE_SIZE = 2 * 1024 * 1024;
/** x86-64 syscall number of mbind (arch/x86/entry/syscalls/syscall_64.tbl). */
const SYS_MBIND = 237;
/** include/uapi/linux/mempolicy.h */
const MPOL_BIND = 2;
/** Nodes the mask passed to mbind can name (one u64); maxnode counts bits, and the kernel wants one more. */
const MAX_NODES = 64;

/**
 * Maps `size` bytes of guest RAM as `backing` asks. A hugetlbfs mapping is made without MAP_NORESERVE, so the
 * pages are reserved now: a host with too few free 2 MiB pages fails here, with the numbers, instead of the guest
 * dying of SIGBUS later.
 */
export function mapGuestRam(size: number, backing: RamBacking): bigint {
  // The kernel takes MADV_MERGEABLE on a hugetlbfs mapping and ignores it (mm/ksm.c: not KSM-compatible).
  if (backing.ksm && backing.hugePages === "2M") throw new RamBackingError(`KSM cannot merge hugetlbfs pages: use huge_pages "None" or "Transparent" with KSM`);
  const addr = backing.hugePages === "2M" ? mapHugetlb(size) : mapAnonymous(size);
  try {
    if (backing.hugePages !== "2M") adviseHugePages(addr, size, backing.hugePages === "Transparent");
    if (backing.ksm) adviseOrThrow(addr, size, MADV_MERGEABLE, "KSM (MADV_MERGEABLE) for guest RAM", "the host kernel lacks CONFIG_KSM");
    if (backing.numaNode !== undefined) bindToNode(addr, size, backing.numaNode);
  } catch (e) {
    unmapQuietly(addr, size);
    throw e;
  }
  return addr;
}

function mapHugetlb(size: number): bigint {
  if (size % HUGE_PAGE_SIZE !== 0) throw new RamBackingError(`huge_pages "2M": ${size} bytes is not a whole number of 2 MiB pages`);
  const addr = mmap(null, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB, -1, 0) as bigint;
  if (addr !== MAP_FAILED) return addr;
  const e = errno();
  if (e !== ENOMEM && e !== EINVAL) throw new SysError("mmap", e, `${size} bytes of guest RAM in 2 MiB hugetlbfs pages`);
  const free = hugePagesFree();
  const needed = size / HUGE_PAGE_SIZE;
  throw new RamBackingError(
    `huge_pages "2M": guest RAM needs ${needed} free 2 MiB huge pages and the host has ${free ?? "none reported"} ` +
      `(HugePages_Free in /proc/meminfo); reserve more with: echo N > /proc/sys/vm/nr_hugepages`,
  );
}

/** The host's free hugetlbfs pages of the default size, or undefined if /proc/meminfo does not say. */
export function hugePagesFree(): number | undefined {
  try {
    const m = /^HugePages_Free:\s+(\d+)/m.exec(readFileSync("/proc/meminfo", "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * MADV_HUGEPAGE. By default petasan asks for THP without insisting: a kernel without THP (EINVAL) still runs the
 * VM on 4 KiB pages. When the config names "Transparent", the advice must be taken.
 */
function adviseHugePages(addr: bigint, size: number, required: boolean): void {
  if (madvise(addr, size, MADV_HUGEPAGE) === 0 || !required) return;
  throw new SysError("madvise(MADV_HUGEPAGE)", errno(), `huge_pages "Transparent": the host kernel must have CONFIG_TRANSPARENT_HUGEPAGE`);
}

/** huge_pages "Transparent" for a mapping made elsewhere (a restored VM's memory file): the advice must be taken. */
export function adviseTransparentHugePages(addr: bigint, size: number): void {
  adviseHugePages(addr, size, true);
}

function adviseOrThrow(addr: bigint, size: number, advice: number, what: string, einvalMeans: string): void {
  if (madvise(addr, size, advice) === 0) return;
  const e = errno();
  throw new SysError(`madvise for ${what}`, e, e === EINVAL ? einvalMeans : undefined);
}

/** mbind(addr, size, MPOL_BIND, {node}): the kernel allocates these pages on `node` only (mbind(2)). */
function bindToNode(addr: bigint, size: number, node: number): void {
  if (!Number.isInteger(node) || node < 0 || node >= MAX_NODES) throw new RamBackingError(`NUMA node ${node}: petasan binds to nodes 0..${MAX_NODES - 1}`);
  const mask = new BigUint64Array([1n << BigInt(node)]);
  const ret = Number(mbindSyscall(SYS_MBIND, addr, size, MPOL_BIND, mask, MAX_NODES + 1, 0));
  if (ret === 0) return;
  const e = errno();
  if (e === EINVAL) throw new RamBackingError(`NUMA node ${node} does not exist on this host (its nodes are in /sys/devices/system/node/online)`);
  throw new SysError("mbind", e, `guest RAM on NUMA node ${node}`);
}

function unmapQuietly(addr: bigint, size: number): void {
  try {
    unmap(addr, size);
  } catch {
    // The error being thrown says what failed; a failed munmap adds nothing the caller can act on.
  }
}
