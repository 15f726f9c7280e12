/**
 * The host paths a VM created through the console may name: only those under the folders the user allowed
 * with `--allow DIR` (none by default). A config names files the VM reads (kernel, initrd, drive images) and
 * files it creates (log, metrics, vsock socket); each one is resolved through symlinks (the file's own path
 * when it exists, else its folder's) and must then lie under an allowed folder, so `../` and a symlink out
 * of the folder are refused alike. The VM opens the file a moment later, so whoever can write inside an
 * allowed folder can still swap a file for a symlink in between: allow folders only you can write to.
 */
import { realpathSync } from "node:fs";
import path from "node:path";
import type { VmConfig } from "../lib/index.js";

/** A path the console will not let a VM use; the message names the field and the path. */
export class PathNotAllowedError extends Error {
  override readonly name = "PathNotAllowedError";
}

export class AllowedPaths {
  /** Each allowed folder, resolved through symlinks. */
  readonly roots: readonly string[];

  /** Throws (one line) when a folder does not exist: a typo would otherwise allow nothing, silently. */
  constructor(folders: readonly string[]) {
    this.roots = folders.map((folder) => {
      try {
        return realpathSync(folder);
      } catch (error) {
        throw new PathNotAllowedError(`--allow ${folder}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      }
    });
  }

  /** `file`, resolved, if it lies under an allowed folder; throws PathNotAllowedError otherwise. */
  check(file: string, field: string): string {
    if (!path.isAbsolute(file)) throw new PathNotAllowedError(`${field}: ${JSON.stringify(file)} is not an absolute path`);
    const resolved = resolveExisting(path.normalize(file));
    if (!this.roots.some((root) => resolved === root || resolved.startsWith(root.endsWith("/") ? root : `${root}/`))) {
      const allowed = this.roots.length === 0 ? "no folder is allowed (start petasan console with --allow DIR)" : `allowed: ${this.roots.join(", ")}`;
      throw new PathNotAllowedError(`${field}: ${file} is outside the paths this console may use (${allowed})`);
    }
    return resolved;
  }

  /**
   * Checks every host path a VM config names (files read and files created). `bootFiles: false` for a VM
   * restored from a snapshot: it never reads the kernel or initrd its saved config names (the guest is in the
   * memory file), but reopens its drives (its saved log and metrics files are not used: loadSnapshot drops them).
   */
  checkConfig(config: Readonly<VmConfig>, options: { bootFiles?: boolean } = {}): void {
    const boot = config["boot-source"];
    if (options.bootFiles !== false) {
      this.check(boot.kernel_image_path, "boot-source.kernel_image_path");
      if (boot.initrd_path !== undefined) this.check(boot.initrd_path, "boot-source.initrd_path");
    }
    config.drives.forEach((drive) => this.check(drive.path_on_host, `drives[${drive.drive_id}].path_on_host`));
    if (config.logger?.log_path !== undefined) this.check(config.logger.log_path, "logger.log_path");
    if (config.metrics !== undefined) this.check(config.metrics.metrics_path, "metrics.metrics_path");
    // The VM listens on uds_path and connects to uds_path_PORT: both in the same folder.
    if (config.vsock !== undefined) this.check(config.vsock.uds_path, "vsock.uds_path");
  }
}

/** realpath of `file`, or of its nearest existing ancestor joined with the rest (for files still to be created). */
function resolveExisting(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    const parent = path.dirname(file);
    if (parent === file) return file;
    return path.join(resolveExisting(parent), path.basename(file));
  }
}
