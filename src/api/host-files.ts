/**
 * Opening the host files a request names, when the request arrives, as Firecracker does: PUT /boot-source
 * opens the kernel and initrd (vmm_config/boot_source.rs BootConfig::new), PUT /drives opens the image
 * read-only or read-write (block/virtio/device.rs DiskProperties::open_file), PUT /logger and PUT /metrics
 * open or create their path (utils::open_file_nonblock). A missing file is a 400 at the PUT, not a failed
 * InstanceStart. The files are closed again; the VMM opens them for real when it boots.
 */
import { open } from "node:fs/promises";
import { constants } from "node:fs";

/** read: the file must be readable; readWrite: readable and writable; create: as readWrite, created if absent. */
export type FileAccess = "read" | "readWrite" | "create";

export interface HostFiles {
  /** Resolves if `path` opens with `access`; rejects with a HostFileError otherwise. */
  check(path: string, access: FileAccess): Promise<void>;
}

/** A file that would not open; `ioMessage` is worded as Rust's io::Error ("... (os error N)"). */
export class HostFileError extends Error {
  override readonly name = "HostFileError";
  constructor(readonly path: string, readonly ioMessage: string, options?: ErrorOptions) {
    super(`${path}: ${ioMessage}`, options);
  }
}

const FLAGS: Readonly<Record<FileAccess, number>> = {
  read: constants.O_RDONLY,
  readWrite: constants.O_RDWR,
  // Read-write and non-blocking, so that a FIFO with no reader yet neither blocks nor fails.
  create: constants.O_RDWR | constants.O_CREAT | constants.O_NONBLOCK,
};

export const nodeHostFiles: HostFiles = {
  async check(path, access) {
    let file;
    try {
      file = await open(path, FLAGS[access], 0o644);
    } catch (error) {
      throw new HostFileError(path, ioErrorText(error), { cause: error });
    }
    await file.close();
  },
};

/** glibc's strerror texts for the errors opening a file gives, which Rust's io::Error prints. */
const STRERROR: Readonly<Record<string, string>> = {
  EPERM: "Operation not permitted",
  ENOENT: "No such file or directory",
  ENXIO: "No such device or address",
  EACCES: "Permission denied",
  EBUSY: "Device or resource busy",
  EEXIST: "File exists",
  ENODEV: "No such device",
  ENOTDIR: "Not a directory",
  EISDIR: "Is a directory",
  EINVAL: "Invalid argument",
  ENFILE: "Too many open files in system",
  EMFILE: "Too many open files",
  ETXTBSY: "Text file busy",
  EFBIG: "File too large",
  ENOSPC: "No space left on device",
  EROFS: "Read-only file system",
  ENAMETOOLONG: "File name too long",
  ELOOP: "Too many levels of symbolic links",
  EOVERFLOW: "Value too large for defined data type",
};

/** An fs error as Rust's io::Error Display shows it, e.g. "No such file or directory (os error 2)". */
export function ioErrorText(error: unknown): string {
  const { code, errno, message } = error as NodeJS.ErrnoException;
  if (code === undefined || errno === undefined) return String(message ?? error);
  const text = STRERROR[code] ?? message.replace(/^[A-Z]+: /, "").replace(/, \w+ '.*'$/, "");
  return `${text} (os error ${Math.abs(errno)})`;
}
