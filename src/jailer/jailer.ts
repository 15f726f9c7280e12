/**
 * `petasan jailer`: Firecracker's jailer steps (docs/jailer.md "Jailer Operation") for petasan.
 *
 * In order: build the chroot and its device nodes, place this process in the cgroup, join the network
 * namespace (setns(CLONE_NEWNET) is per thread, and the calling thread is the one that execs), set the rlimits,
 * mark every inherited fd close-on-exec, then, as Firecracker's chroot.rs, enter a new mount namespace and
 * pivot_root into the jail (pivot-root.ts: the main thread alone, the rest of Node stays behind), drop to the
 * gid (no supplementary groups) and uid, and exec Node on petasan inside the jail with an empty environment. As
 * with Firecracker's jailer, the jailed VMM keeps the jailer's pid; with --new-pid-ns (or --daemonize when this
 * process leads its process group, so that setsid would fail) it is a child instead, started from the jail, and
 * its host pid goes to <chroot>/<exec name>.pid.
 */
import { existsSync, openSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { check } from "../sys/errors.js";
import { dup2, errno, execve, fcntl, getsid, setgid, setgroups, setns, setrlimit, setsid, setuid, unshare } from "../sys/libc.js";
import { buildJail, type JailLayout } from "./chroot.js";
import { cgroup2Mount, placeInCgroup } from "./cgroup.js";
import { pivotIntoJail } from "./pivot-root.js";
import type { JailerArgs } from "./args.js";

const CLONE_NEWNET = 0x40000000;
const CLONE_NEWPID = 0x20000000;
const F_SETFD = 2;
const FD_CLOEXEC = 1;
const RLIMIT_FSIZE = 1;
const RLIMIT_NOFILE = 7;
const EPERM = 1;

export class JailerError extends Error {
  override readonly name = "JailerError";
}

/** The chroot folder: <chroot base>/<exec name>/<id>/root (Firecracker's layout). */
export function chrootDir(args: JailerArgs): string {
  return join(args.chrootBaseDir, args.execName, args.id, "root");
}

/**
 * Builds the jail and execs the VMM in it (returns only by throwing); with --new-pid-ns (or --daemonize from a
 * process group leader), starts the VMM as this process's child and resolves once its pid file is written.
 */
export function jail(args: JailerArgs): Promise<void> {
  const startUs = process.hrtime.bigint() / 1000n;
  const { user, system } = process.cpuUsage();
  markInheritedFdsCloseOnExec();
  // Firecracker validates every path first: nothing is made for a command line that cannot work.
  if (!existsSync(args.execFile)) throw new JailerError(`--exec-file: ${args.execFile} does not exist`);
  const netnsFd = args.netns === undefined ? undefined : openNetns(args.netns);
  const root = chrootDir(args);
  if (existsSync(root)) throw new JailerError(`${root} already exists: each jailed VMM needs an id of its own`);
  let layout: JailLayout;
  let cgroup: string | undefined;
  const homeCgroup = /^0::(.*)$/m.exec(readFileSync("/proc/self/cgroup", "utf8"))?.[1] ?? "/";
  try {
    layout = buildJail(root, { execFile: args.execFile, uid: args.uid, gid: args.gid });
    cgroup = placeInCgroup({ id: args.id, parent: args.parentCgroup, settings: args.cgroups, pid: process.pid });
    if (netnsFd !== undefined) check(setns(netnsFd, CLONE_NEWNET), "setns", args.netns);
  } catch (error) {
    undo(root, cgroup !== undefined && args.cgroups.length > 0 ? { made: cgroup, home: homeCgroup } : undefined);
    throw error;
  }
  if (args.daemonize) {
    const devNull = openSync("/dev/null", "r+");
    for (const fd of [0, 1, 2]) check(dup2(devNull, fd), "dup2", "/dev/null");
  }
  // Node marks its stdio close-on-exec on some terminals and pipes: the VMM must inherit 0, 1 and 2.
  for (const fd of [0, 1, 2]) fcntl(fd, F_SETFD, 0);
  setLimit(RLIMIT_NOFILE, args.resourceLimits.noFile, "no-file");
  if (args.resourceLimits.fsize !== undefined) setLimit(RLIMIT_FSIZE, args.resourceLimits.fsize, "fsize");

  const vmm = [
    layout.node, layout.entry, "--id", args.id,
    // Firecracker's jailer passes its start clocks on (the VMM's api_server.process_startup_time_* metrics).
    "--start-time-us", String(startUs), "--start-time-cpu-us", String(user + system), ...args.vmmArgs,
  ];
  try {
    pivotIntoJail(root);
  } catch (error) {
    // Before pivot_root this thread still sees the host's paths; after it (nothing is left to fail but the
    // unmount of the old root) they name nothing and the chroot stays.
    undo(root, cgroup !== undefined && args.cgroups.length > 0 ? { made: cgroup, home: homeCgroup } : undefined);
    throw error;
  }
  // From here this thread's paths are the jail's: the pid file is at its root.
  const pidFile = `/${args.execName}.pid`;
  if (args.newPidNs) {
    check(unshare(CLONE_NEWPID), "unshare", "CLONE_NEWPID");
    return startChild(vmm, pidFile, { uid: args.uid, gid: args.gid, newSession: args.daemonize || getsid(0) === process.pid });
  }
  // setsid fails for a process group leader; Firecracker forks first, and so does this jailer then (the VMM is
  // its child, in a new session).
  if (args.daemonize && setsid() < 0) {
    if (errno() !== EPERM) check(-1, "setsid");
    return startChild(vmm, pidFile, { uid: args.uid, gid: args.gid, newSession: true });
  }
  dropToUser(args.uid, args.gid);
  // Firecracker clears the environment it was given: the VMM gets none.
  execve(vmm[0], [...vmm, null], [null]);
  check(-1, "execve", `${vmm[0]} in the jail`);
  throw new JailerError(`cannot exec ${vmm[0]} in the jail`);
}

/** A failed jailer leaves nothing behind: the chroot it made, and the cgroup it made (it is still in it). */
function undo(root: string, cgroup: { made: string; home: string } | undefined): void {
  rmSync(root, { recursive: true, force: true });
  try {
    rmdirSync(dirname(root));
  } catch {
    // <id>/ holds something else too: it stays.
  }
  if (cgroup !== undefined) leaveCgroup(cgroup.made, cgroup.home);
}

/** No supplementary groups, then the gid, then the uid (after which the first two could no longer be changed). */
function dropToUser(uid: number, gid: number): void {
  check(setgroups(0, null), "setgroups", "[]");
  check(setgid(gid), "setgid", String(gid));
  check(setuid(uid), "setuid", String(uid));
}

/**
 * Starts the VMM as this process's child, from the jail (spawn forks this thread, whose root is the jail), as the
 * jailed user (libuv drops the supplementary groups, then sets the gid and uid), with an empty environment, and
 * resolves once its pid file is written. With --new-pid-ns (Firecracker's exec_into_new_pid_ns) the child is init
 * of the new pid namespace. A child in a new session does not get SIGHUP when this process, a session or process
 * group leader, ends (Firecracker's reason too).
 */
function startChild(argv: string[], pidFile: string, opts: { uid: number; gid: number; newSession: boolean }): Promise<void> {
  const child = spawn(argv[0], argv.slice(1), { stdio: "inherit", env: {}, uid: opts.uid, gid: opts.gid, detached: opts.newSession });
  return new Promise((resolve, reject) => {
    child.once("error", (error) => reject(new JailerError(`cannot start ${argv[0]} in the jail: ${error.message}`)));
    child.once("spawn", () => {
      writeFileSync(pidFile, `${child.pid}`);
      child.unref();
      resolve();
    });
  });
}

function openNetns(path: string): number {
  try {
    return openSync(path, "r");
  } catch (error) {
    throw new JailerError(`--netns: ${(error as Error).message}`, { cause: error });
  }
}

/** Moves this process back to the cgroup it came from and removes the one it had made. */
function leaveCgroup(dir: string, home: string): void {
  try {
    writeFileSync(join(cgroup2Mount(), home, "cgroup.procs"), `${process.pid}\n`);
    rmdirSync(dir);
  } catch {
    // Best effort: the error that stopped the jailer is the one to report.
  }
}

/** Firecracker closes the fds it inherited (all but 0, 1, 2); close-on-exec does that at the execve. */
function markInheritedFdsCloseOnExec(): void {
  for (const name of readdirSync("/proc/self/fd")) {
    const fd = Number(name);
    if (fd <= 2) continue;
    try {
      readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // the directory's own fd, closed since
    }
    fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
}

function setLimit(resource: number, value: number, name: string): void {
  const rlim = Buffer.alloc(16);
  rlim.writeBigUInt64LE(BigInt(value), 0);
  rlim.writeBigUInt64LE(BigInt(value), 8);
  check(setrlimit(resource, rlim), "setrlimit", `${name}=${value}`);
}
