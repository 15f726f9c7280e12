/**
 * Applies a Diff snapshot's memory file onto the memory file below it (the Full one, or a base that earlier
 * Diffs were merged into), as Firecracker's snapshot-editor `edit-memory rebase` does: the Diff file is sparse and
 * exactly its dirty pages are data, which SEEK_DATA/SEEK_HOLE find without reading the holes. The result loads
 * with the Diff's state file.
 */
import { closeSync, fstatSync, openSync, readSync, writeSync } from "node:fs";
import { lseek, errno } from "../../sys/libc.js";
import { SysError } from "../../sys/errors.js";

const SEEK_DATA = 3;
const SEEK_HOLE = 4;
const ENXIO = 6;
const COPY_CHUNK = 1 << 20;

export class MergeMemoryError extends Error {
  override readonly name = "MergeMemoryError";
}

/** Copies every data range of `diffPath` into `basePath` at the same offset; returns the bytes copied. */
export function mergeMemoryLayer(basePath: string, diffPath: string): number {
  const open = (p: string, flags: string) => {
    try {
      return openSync(p, flags);
    } catch (e) {
      throw new MergeMemoryError(`cannot open ${p}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };
  const diff = open(diffPath, "r");
  let base: number | undefined;
  try {
    base = open(basePath, "r+");
    const size = fstatSync(diff).size;
    const baseSize = fstatSync(base).size;
    if (size !== baseSize) throw new MergeMemoryError(`${diffPath} is ${size} bytes and ${basePath} ${baseSize}: they are not memory files of the same VM`);
    const buf = Buffer.alloc(COPY_CHUNK);
    let copied = 0;
    for (let at = 0; at < size; ) {
      const data = Number(lseek(diff, at, SEEK_DATA));
      if (data < 0) {
        if (errno() === ENXIO) break; // no data past `at`
        throw new SysError("lseek", errno(), `SEEK_DATA in ${diffPath}`);
      }
      const hole = Number(lseek(diff, data, SEEK_HOLE));
      if (hole < 0) throw new SysError("lseek", errno(), `SEEK_HOLE in ${diffPath}`);
      for (let off = data; off < hole; ) {
        const n = readSync(diff, buf, 0, Math.min(COPY_CHUNK, hole - off), off);
        if (n === 0) break;
        writeSync(base, buf, 0, n, off);
        off += n;
        copied += n;
      }
      at = hole;
    }
    return copied;
  } finally {
    closeSync(diff);
    if (base !== undefined) closeSync(base);
  }
}
