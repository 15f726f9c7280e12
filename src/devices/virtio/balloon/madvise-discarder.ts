/**
 * Gives guest RAM back to Linux (KVM's design: the host kernel is the memory manager). MADV_DONTNEED on private
 * anonymous memory frees the pages, and the next guest access faults in a zero page. On a shared mapping (memfd or
 * file: a restored snapshot, for example) MADV_DONTNEED only unmaps, so MADV_REMOVE punches the hole in the backing
 * first; Linux refuses MADV_REMOVE on private anonymous memory (EINVAL/EACCES), which is the usual case.
 */
import type { GuestMemory } from "../../../memory/guest-memory.js";
import { errno, madviseAddress } from "../../../sys/libc.js";
import { SysError } from "../../../sys/errors.js";
import { hostContiguousPieces } from "../guest-pieces.js";
import type { PageDiscarder } from "./balloon-device.js";

const MADV_DONTNEED = 4;
const MADV_REMOVE = 9;

export function madviseDiscarder(mem: GuestMemory): PageDiscarder {
  return {
    discard(addr, len) {
      for (const piece of hostContiguousPieces(mem, [{ addr, len }])) {
        // hostAddress() throws GuestMemoryError for a range outside guest RAM: never madvise host memory that is not RAM.
        const host = Number(mem.hostAddress(piece.addr, piece.len));
        madviseAddress(host, piece.len, MADV_REMOVE);
        if (madviseAddress(host, piece.len, MADV_DONTNEED) !== 0) {
          throw new SysError("madvise(MADV_DONTNEED)", errno(), `guest range 0x${piece.addr.toString(16)}+0x${piece.len.toString(16)}`);
        }
      }
    },
  };
}
