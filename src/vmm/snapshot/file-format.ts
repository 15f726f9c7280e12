/**
 * The snapshot (state) file: a fixed header, then a JSON body.
 *
 *   0  8   magic "PETASNAP"
 *   8  4   format version (u32 LE)
 *  12  4   reserved, 0
 *  16  8   body length in bytes (u64 LE)
 *  24 32   SHA-256 of the body
 *  56  …   body: UTF-8 JSON (SnapshotBody)
 *
 * Firecracker's snapshot file has the same parts (magic + version, bincode state, CRC64 at the end:
 * src/vmm/src/snapshot/mod.rs). A file that is short, foreign, of another version, longer or shorter than its
 * header says, or whose checksum fails is refused with a SnapshotFileError naming which; nothing is restored
 * from it. The guest's RAM is in a separate memory file (see memory-file.ts).
 */
import { createHash } from "node:crypto";

export const SNAPSHOT_MAGIC = "PETASNAP";
/** 2: devices' own states (vsock, balloon, devices written by the user) beside their transports'. */
export const SNAPSHOT_FORMAT_VERSION = 2;
export const HEADER_BYTES = 56;
/** A state file far beyond any real one (a few vCPUs of a few KiB each) is refused before it is read whole. */
export const MAX_SNAPSHOT_BYTES = 64 * 1024 * 1024;

/** The file is not a snapshot this petasan can load: the message says why, in one line. */
export class SnapshotFileError extends Error {
  override readonly name = "SnapshotFileError";
}

export function encodeSnapshotFile(body: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(body), "utf8");
  const header = Buffer.alloc(HEADER_BYTES);
  header.write(SNAPSHOT_MAGIC, 0, "latin1");
  header.writeUInt32LE(SNAPSHOT_FORMAT_VERSION, 8);
  header.writeBigUInt64LE(BigInt(json.length), 16);
  createHash("sha256").update(json).digest().copy(header, 24);
  return Buffer.concat([header, json]);
}

/** Checks the header and checksum of `file` (named `path` in errors) and returns the parsed JSON body. */
export function decodeSnapshotFile(file: Uint8Array, path: string): unknown {
  const b = Buffer.from(file.buffer, file.byteOffset, file.length);
  if (b.length < HEADER_BYTES) throw new SnapshotFileError(`snapshot file ${path} is truncated: ${b.length} bytes, shorter than its ${HEADER_BYTES}-byte header`);
  if (b.toString("latin1", 0, 8) !== SNAPSHOT_MAGIC) throw new SnapshotFileError(`${path} is not a petasan snapshot file (no ${SNAPSHOT_MAGIC} magic)`);
  const version = b.readUInt32LE(8);
  if (version !== SNAPSHOT_FORMAT_VERSION) {
    throw new SnapshotFileError(`snapshot file ${path} has format version ${version}; this petasan reads version ${SNAPSHOT_FORMAT_VERSION} only (take the snapshot again with this petasan)`);
  }
  const length = b.readBigUInt64LE(16);
  const actual = BigInt(b.length - HEADER_BYTES);
  if (length !== actual) {
    throw new SnapshotFileError(`snapshot file ${path} is ${actual < length ? "truncated" : "longer than its header says"}: the body is ${actual} bytes, the header says ${length}`);
  }
  const body = b.subarray(HEADER_BYTES);
  if (!createHash("sha256").update(body).digest().equals(b.subarray(24, 56))) throw new SnapshotFileError(`snapshot file ${path} is corrupted: its SHA-256 checksum does not match`);
  try {
    return JSON.parse(body.toString("utf8"));
  } catch (e) {
    throw new SnapshotFileError(`snapshot file ${path} has a body that is not JSON: ${(e as Error).message}`);
  }
}
