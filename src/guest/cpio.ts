/**
 * Writer for uncompressed cpio "newc" archives, the format the Linux kernel unpacks as an initramfs.
 * Layout from the kernel's Documentation/driver-api/early-userspace/buffer-format.rst: each entry is a
 * 110-byte ASCII header, the NUL-terminated name padded to a multiple of 4 bytes (counting the header), then
 * the file data padded to a multiple of 4; the archive ends with an entry named "TRAILER!!!".
 * Uncompressed on purpose: gunzip under this host's emulated ring 0 costs ~50 s of boot (KVM-HERE notes).
 */

/** A malformed archive request: bad path, duplicate entry, missing parent, out-of-range number. */
export class CpioError extends Error {
  override readonly name = "CpioError";
}

/** "070701": newc format without checksums (buffer-format.rst, c_magic). */
const NEWC_MAGIC = "070701";
/** Every entry and its data start on a 4-byte boundary (buffer-format.rst: "padded to a multiple of four"). */
const ALIGNMENT = 4;
/** The name of the entry that ends the archive (buffer-format.rst). */
export const TRAILER_NAME = "TRAILER!!!";

/** File-type bits of st_mode: include/uapi/linux/stat.h. */
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFCHR = 0o020000;
/** Permission bits (rwx for user/group/other plus setuid/setgid/sticky) that a caller may pass. */
const PERMISSION_BITS = 0o7777;
/** Header numbers are 8 hex digits (buffer-format.rst), so every field must fit in 32 bits. */
const MAX_FIELD = 0xffff_ffff;

interface Entry {
  name: string;
  mode: number;
  nlink: number;
  rdevMajor: number;
  rdevMinor: number;
  data: Uint8Array;
}

/** Builds an archive in memory; entries are written in the order they are added (parents first). */
export class CpioWriter {
  private readonly entries: Entry[] = [];
  private readonly kinds = new Map<string, "dir" | "other">();

  addDirectory(path: string, permissions = 0o755): this {
    // nlink 2: the directory's own "." plus its entry in the parent, as stat(2) reports for an empty directory.
    return this.add(path, S_IFDIR, permissions, 2, new Uint8Array(0), 0, 0, "dir");
  }

  addFile(path: string, data: Uint8Array, permissions = 0o644): this {
    if (data.length > MAX_FIELD) throw new CpioError(`cpio: ${path}: ${data.length} bytes exceed the 32-bit size field`);
    return this.add(path, S_IFREG, permissions, 1, data, 0, 0, "other");
  }

  /** A character device node, e.g. /dev/console is c 5 1 (Documentation/admin-guide/devices.txt). */
  addCharDevice(path: string, major: number, minor: number, permissions = 0o600): this {
    for (const [what, n] of [["major", major], ["minor", minor]] as const) {
      if (!Number.isInteger(n) || n < 0 || n > MAX_FIELD) throw new CpioError(`cpio: ${path}: device ${what} ${n} is not a 32-bit number`);
    }
    return this.add(path, S_IFCHR, permissions, 1, new Uint8Array(0), major, minor, "other");
  }

  /** The whole archive, trailer included. */
  toBuffer(): Buffer {
    const parts: Uint8Array[] = [];
    let offset = 0;
    const push = (bytes: Uint8Array): void => {
      parts.push(bytes);
      offset += bytes.length;
    };
    const pad = (): void => push(new Uint8Array((ALIGNMENT - (offset % ALIGNMENT)) % ALIGNMENT));

    const trailer: Entry = { name: TRAILER_NAME, mode: 0, nlink: 1, rdevMajor: 0, rdevMinor: 0, data: new Uint8Array(0) };
    [...this.entries, trailer].forEach((entry, index) => {
      // Inode numbers only need to be distinct (the kernel uses them to spot hard links); the trailer has 0.
      const ino = entry === trailer ? 0 : index + 1;
      push(encodeHeader(entry, ino));
      push(Buffer.from(`${entry.name}\0`, "utf8"));
      pad();
      push(entry.data);
      pad();
    });
    return Buffer.concat(parts);
  }

  private add(path: string, type: number, permissions: number, nlink: number, data: Uint8Array,
    rdevMajor: number, rdevMinor: number, kind: "dir" | "other"): this {
    const name = normalisePath(path);
    if (!Number.isInteger(permissions) || permissions < 0 || permissions > PERMISSION_BITS) {
      throw new CpioError(`cpio: ${path}: permissions 0o${permissions.toString(8)} are not within 0o7777`);
    }
    if (this.kinds.has(name)) throw new CpioError(`cpio: ${path}: already in the archive`);
    const parent = name.includes("/") ? name.slice(0, name.lastIndexOf("/")) : undefined;
    // The kernel creates entries in archive order and silently skips one whose directory does not exist yet.
    if (parent !== undefined && this.kinds.get(parent) !== "dir") {
      throw new CpioError(`cpio: ${path}: parent directory ${parent} must be added first`);
    }
    this.kinds.set(name, kind);
    this.entries.push({ name, mode: type | permissions, nlink, rdevMajor, rdevMinor, data });
    return this;
  }
}

/** Archive names are relative ("dev/console"), as the kernel resolves them from the rootfs root. */
function normalisePath(path: string): string {
  const name = path.replace(/^\/+/, "");
  const segments = name.split("/");
  if (name === "" || name.includes("\0") || segments.some((s) => s === "" || s === "." || s === "..")) {
    throw new CpioError(`cpio: invalid path ${JSON.stringify(path)} (need a/b/c form, no empty, "." or ".." parts)`);
  }
  if (name === TRAILER_NAME) throw new CpioError(`cpio: ${TRAILER_NAME} is reserved for the archive end`);
  return name;
}

/** The 110-byte header: magic then 13 eight-digit hex fields, in buffer-format.rst order. */
function encodeHeader(entry: Entry, ino: number): Buffer {
  const fields = [
    ino,
    entry.mode,
    0, // uid: root
    0, // gid: root
    entry.nlink,
    0, // mtime: fixed so the same inputs give byte-identical archives (they are cached by content hash)
    entry.data.length,
    0, // devmajor, devminor: the device holding the file; meaningless in an initramfs
    0,
    entry.rdevMajor,
    entry.rdevMinor,
    Buffer.byteLength(entry.name, "utf8") + 1, // namesize counts the terminating NUL
    0, // check: always 0 for the 070701 magic
  ];
  return Buffer.from(NEWC_MAGIC + fields.map((n) => n.toString(16).padStart(8, "0")).join(""), "ascii");
}
