/**
 * A file's bytes in memory that is handed back the moment it is released, for files read once and dropped (the
 * kernel image and initrd a VM boots from). Bytes read with readFile live in an ArrayBuffer that only a garbage
 * collection frees, and a thread that goes idle after starting a VM may run none for the VM's whole life: the
 * default guest's 16 MiB vmlinux stayed resident beside every idle VM (bench/footprint.ts). Here the bytes sit in
 * a private anonymous mapping, unmapped by release().
 */
import { closeSync, fstatSync, openSync, readFileSync, readSync } from "node:fs";
import { view } from "../sys/libc.js";
import { mapAnonymous, unmap } from "./host-mapping.js";

export interface FileBytes {
  /** The file's bytes; empty once released (the memory under the old view is gone: keep no view of it). */
  readonly bytes: Uint8Array;
  /** Frees the bytes (idempotent). */
  release(): void;
}

/**
 * Reads `path` whole. A regular file is read into its own mapping; anything else (a pipe, a device) through
 * readFileSync, left to the garbage collector. Errors are fs's (ENOENT, EISDIR, EACCES), naming the path.
 */
export function readFileBytes(path: string): FileBytes {
  const fd = openSync(path, "r");
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile() || stat.size === 0) {
      const bytes = readFileSync(fd);
      return { bytes, release: () => {} };
    }
    const size = stat.size;
    const addr = mapAnonymous(size);
    let bytes = new Uint8Array(view(addr, size));
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      bytes = new Uint8Array(0);
      unmap(addr, size);
    };
    try {
      let done = 0;
      while (done < size) {
        const n = readSync(fd, bytes, done, size - done, done);
        if (n === 0) break; // the file shrank while being read: what was there is what it holds
        done += n;
      }
      if (done < size) bytes = bytes.subarray(0, done);
    } catch (e) {
      release();
      throw e;
    }
    return { get bytes() { return bytes; }, release };
  } finally {
    closeSync(fd);
  }
}
