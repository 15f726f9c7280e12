/**
 * Host CPU placement: which CPUs a thread may run on (sched_setaffinity(2)) and which CPUs belong to a NUMA
 * node (sysfs). petasan pins vCPU threads next to the memory their guest RAM is bound to; the scheduler does
 * the rest.
 */
import { readFileSync } from "node:fs";
import { errno, schedSetaffinity } from "./libc.js";
import { SysError } from "./errors.js";

/** cpu_set_t is 1024 bits in glibc; the kernel accepts any multiple of sizeof(long). */
const CPU_SET_BITS = 1024;

/** Restricts the calling thread to `cpus` (pid 0 means "this thread" for sched_setaffinity). */
export function pinThisThread(cpus: readonly number[]): void {
  if (cpus.length === 0) throw new Error("no host CPUs to pin the thread to");
  const mask = new Uint8Array(CPU_SET_BITS / 8);
  for (const cpu of cpus) {
    if (!Number.isInteger(cpu) || cpu < 0 || cpu >= CPU_SET_BITS) throw new Error(`host CPU ${cpu} is outside 0..${CPU_SET_BITS - 1}`);
    mask[cpu >> 3] |= 1 << (cpu & 7);
  }
  if (schedSetaffinity(0, mask.length, mask) !== 0) throw new SysError("sched_setaffinity", errno(), `CPUs ${cpus.join(",")}`);
}

/** Parses a kernel CPU list ("0-3,8,10-11", Documentation/admin-guide/cputopology.rst) into CPU numbers. */
export function parseCpuList(text: string): number[] {
  const cpus: number[] = [];
  for (const part of text.trim().split(",")) {
    if (part === "") continue;
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new Error(`"${text.trim()}" is not a CPU list`);
    const first = Number(m[1]);
    const last = m[2] === undefined ? first : Number(m[2]);
    for (let cpu = first; cpu <= last; cpu++) cpus.push(cpu);
  }
  return cpus;
}

/** The host CPUs of NUMA node `node` (/sys/devices/system/node/nodeN/cpulist), or an error naming the node. */
export function cpusOfNumaNode(node: number, sysfs = "/sys/devices/system/node"): number[] {
  let text: string;
  try {
    text = readFileSync(`${sysfs}/node${node}/cpulist`, "utf8");
  } catch {
    throw new Error(`NUMA node ${node} does not exist on this host (its nodes are in ${sysfs}/online)`);
  }
  const cpus = parseCpuList(text);
  if (cpus.length === 0) throw new Error(`NUMA node ${node} has no CPUs (a memory-only node): petasan cannot pin vCPUs there`);
  return cpus;
}
