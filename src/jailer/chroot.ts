/**
 * The jail's file system, built from the host side before the jailed process starts (Firecracker's
 * env.rs: the chroot folder, a copy of the exec file, device nodes owned by the jailed user).
 *
 * petasan is JavaScript, so what runs in the jail is Node: the node binary and the shared libraries `ldd`
 * names for it and for the native addons (koffi's), at the paths the dynamic loader looks for them, and the
 * petasan package (package.json, bin/, dist/src/, node_modules/ of its dependencies) under /petasan, and a copy
 * of /proc/cpuinfo. All are
 * copies (as Firecracker copies its binary: no memory shared with other VMMs' files), owned by root and not
 * writable by the jailed user: the jail is read-only except its root folder, which the user owns so the VMM
 * can create its API socket there.
 */
import { chmodSync, chownSync, copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, statSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { dirname, join, relative } from "node:path";
import { check } from "../sys/errors.js";
import { mknod } from "../sys/libc.js";

/** Where the petasan package goes inside the jail. */
export const JAIL_PACKAGE_DIR = "/petasan";

/**
 * Character devices the VMM opens (Firecracker env.rs: DEV_KVM 10:232, DEV_NET_TUN 10:200, DEV_URANDOM 1:9),
 * and /dev/null (1:3), which Node opens at start-up in place of a closed stdio fd.
 */
const DEVICES = [
  { path: "/dev/null", major: 1, minor: 3 },
  { path: "/dev/kvm", major: 10, minor: 232 },
  { path: "/dev/net/tun", major: 10, minor: 200 },
  { path: "/dev/urandom", major: 1, minor: 9 },
];
const S_IFCHR = 0o020000;

export interface JailLayout {
  /** <base>/<exec name>/<id>/root */
  root: string;
  /** The node binary's path, the same inside the jail and out. */
  node: string;
  /** The exec file's path inside the jail. */
  entry: string;
}

/** The package root of `file`: the nearest folder above it with a package.json. */
export function packageRootOf(file: string): string {
  for (let dir = dirname(realpathSync(file)); ; dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json"))) return dir;
    if (dirname(dir) === dir) throw new Error(`${file} is not inside a package (no package.json above it)`);
  }
}

export function buildJail(root: string, opts: { execFile: string; uid: number; gid: number }): JailLayout {
  mkdirSync(root, { recursive: true, mode: 0o755 });
  const pkg = packageRootOf(opts.execFile);
  const jailPkg = join(root, JAIL_PACKAGE_DIR);
  // Timestamps kept: bin/petasan.js runs dist/bundle only if it is not older than dist/src.
  for (const part of ["package.json", "bin", "dist/src", "dist/bundle"]) {
    if (existsSync(join(pkg, part))) cpSync(join(pkg, part), join(jailPkg, part), { recursive: true, dereference: true, preserveTimestamps: true });
  }
  // Only what petasan needs at run time: its dependencies (koffi and its prebuilt native module), not the
  // development ones (TypeScript, type declarations).
  for (const dep of runtimeDependencies(pkg)) {
    cpSync(join(pkg, "node_modules", dep), join(jailPkg, "node_modules", dep), { recursive: true, dereference: true });
  }
  // petasan reads the host CPU's flags (VT-x/AMD-V or not) from /proc/cpuinfo; the jail has no /proc, so it gets
  // a copy of that one file.
  mkdirSync(join(root, "proc"), { mode: 0o555 });
  writeFileSync(join(root, "proc", "cpuinfo"), readFileSync("/proc/cpuinfo"), { mode: 0o444 });
  const node = realpathSync(process.execPath);
  copyInto(root, node, node);
  const addons = findFiles(join(jailPkg, "node_modules"), ".node");
  for (const lib of sharedLibraries([node, ...addons])) copyInto(root, realpathSync(lib), lib);
  readOnly(join(root, JAIL_PACKAGE_DIR));
  for (const d of DEVICES) {
    const path = join(root, d.path);
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    // makedev for small numbers (glibc's gnu_dev_makedev): major << 8 | minor.
    check(mknod(path, S_IFCHR | 0o600, BigInt((d.major << 8) | d.minor)), "mknod", path);
    chownSync(path, opts.uid, opts.gid);
  }
  chownSync(root, opts.uid, opts.gid);
  return { root, node, entry: join(JAIL_PACKAGE_DIR, relative(pkg, realpathSync(opts.execFile))) };
}

/**
 * The package's dependencies and optional dependencies that are installed, with theirs, by name (node_modules
 * is flat, as npm installs it).
 */
function runtimeDependencies(pkg: string): string[] {
  const seen = new Set<string>();
  const visit = (dir: string) => {
    const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { dependencies?: object; optionalDependencies?: object };
    for (const name of Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies })) {
      const at = join(pkg, "node_modules", name);
      if (seen.has(name) || !existsSync(join(at, "package.json"))) continue;
      seen.add(name);
      visit(at);
    }
  };
  visit(pkg);
  return [...seen];
}

/** Copies `from` to `<root><at>`, making the folders on the way (root-owned, 0755) and keeping the mode. */
function copyInto(root: string, from: string, at: string): void {
  const to = join(root, at);
  mkdirSync(dirname(to), { recursive: true, mode: 0o755 });
  if (!existsSync(to)) copyFileSync(from, to);
  chmodSync(to, statSync(from).mode & 0o555);
}

/** The libraries `ldd` (Debian's libc-bin) lists for these ELF files, at the paths the loader will ask for. */
function sharedLibraries(files: string[]): Set<string> {
  const libs = new Set<string>();
  for (const f of files) {
    const out = execFileSync("ldd", [f], { encoding: "utf8" });
    for (const m of out.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)) libs.add(m[1]);
  }
  return libs;
}

function findFiles(dir: string, suffix: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith(suffix))
    .map((e) => join(e.parentPath, e.name));
}

/** Nobody but root may write under `dir` (the copies are root's: we run as root). */
function readOnly(dir: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const p = join(e.parentPath, e.name);
    chmodSync(p, statSync(p).mode & 0o555);
  }
  chmodSync(dir, 0o555);
}
