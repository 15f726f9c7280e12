/** HostFiles for tests: every path opens, except those listed in `missing`; records each check. */
import { HostFileError, type FileAccess, type HostFiles } from "./host-files.js";

export class FakeHostFiles implements HostFiles {
  readonly checks: [string, FileAccess][] = [];
  readonly missing = new Set<string>();

  check(path: string, access: FileAccess): Promise<void> {
    this.checks.push([path, access]);
    if (this.missing.has(path)) return Promise.reject(new HostFileError(path, "No such file or directory (os error 2)"));
    return Promise.resolve();
  }
}
