/** Guest RAM as anonymous host memory: mmap(MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE). */
import { mmap, munmap, view } from "../sys/libc.js";
import { SysError } from "../sys/errors.js";
import { errno } from "../sys/libc.js";
import { GuestMemory, type MemoryRegionDescriptor } from "./guest-memory.js";

const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_PRIVATE = 0x02;
const MAP_ANONYMOUS = 0x20;
const MAP_NORESERVE = 0x4000;
const MAP_FAILED = 0xffff_ffff_ffff_ffffn;

/** Maps `size` bytes of zeroed, lazily-committed host memory; pages cost nothing until touched. */
export function mapAnonymous(size: number): bigint {
  const addr = mmap(null, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0) as bigint;
  if (addr === MAP_FAILED) throw new SysError("mmap", errno(), `${size} bytes of guest RAM`);
  return addr;
}

export function unmap(addr: bigint, size: number): void {
  munmap(addr, size);
}

/** A GuestMemory over mappings made in this or another thread of the process. */
export function guestMemoryOver(regions: readonly MemoryRegionDescriptor[]): GuestMemory {
  return new GuestMemory(regions, (hostAddr, size) => new Uint8Array(view(hostAddr, size)));
}
