/**
 * cgroup v2 placement, as Firecracker's jailer (docs/jailer.md, src/jailer/src/cgroup.rs): with --cgroup
 * settings, the cgroup <mount>/<parent>/<id> is made, each FILE=VALUE written into it (the controllers they
 * name enabled in the parents' cgroup.subtree_control first), and the process moved in; with none, the process
 * moves into <mount>/<parent> if that exists, and stays where it is if not.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

/** The cgroup2 mount point from /proc/mounts (Firecracker parses it there too). */
export function cgroup2Mount(mounts = readFileSync("/proc/mounts", "utf8")): string {
  for (const line of mounts.split("\n")) {
    const [, where, type] = line.split(" ");
    if (type === "cgroup2") return where;
  }
  throw new Error("no cgroup v2 hierarchy is mounted (no cgroup2 line in /proc/mounts)");
}

/** Places process `pid`; returns the cgroup folder it was moved into, if any. */
export function placeInCgroup(opts: { id: string; parent: string; settings: { file: string; value: string }[]; pid: number }): string | undefined {
  const mount = cgroup2Mount();
  const parent = join(mount, opts.parent);
  if (opts.settings.length === 0) {
    if (!existsSync(parent)) return undefined;
    writeFileSync(join(parent, "cgroup.procs"), `${opts.pid}\n`);
    return parent;
  }
  const dir = join(parent, opts.id);
  const made = mkdirSync(dir, { recursive: true });
  try {
    configure(mount, dir, opts);
  } catch (error) {
    // Only what this call made goes: a parent that existed before stays.
    if (made !== undefined) removeUpTo(dir, made);
    throw error;
  }
  return dir;
}

function configure(mount: string, dir: string, opts: { parent: string; settings: { file: string; value: string }[]; pid: number }): void {
  const controllers = new Set(opts.settings.map((s) => s.file.split(".")[0]).filter((c) => c !== "cgroup"));
  const steps = opts.parent.split("/");
  for (let i = 0; i <= steps.length; i++) {
    const at = join(mount, ...steps.slice(0, i));
    for (const c of controllers) writeCgroupFile(join(at, "cgroup.subtree_control"), `+${c}`);
  }
  for (const s of opts.settings) writeCgroupFile(join(dir, s.file), s.value);
  writeCgroupFile(join(dir, "cgroup.procs"), `${opts.pid}`);
}

/** rmdir `dir` and its parents up to and including `top` (cgroup folders go with rmdir, not recursively). */
function removeUpTo(dir: string, top: string): void {
  for (let d = dir; ; d = dirname(d)) {
    try {
      rmdirSync(d);
    } catch {
      return;
    }
    if (d === top) return;
  }
}

function writeCgroupFile(path: string, value: string): void {
  try {
    writeFileSync(path, `${value}\n`);
  } catch (error) {
    throw new Error(`cannot write "${value}" to ${path}: ${(error as Error).message}`, { cause: error });
  }
}
