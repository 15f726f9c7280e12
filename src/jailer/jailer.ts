/**
 * `petasan jailer`: Firecracker's jailer steps (docs/jailer.md "Jailer Operation") for petasan.
 *
 * Why the last steps go through util-linux's `unshare` (Debian essential) and not through calls made here:
 * Node is multi-threaded (V8's platform threads, libuv's pool), and the kernel refuses unshare(CLONE_NEWNS)
 * to a thread that shares its fs_struct with others (EINVAL), so a Node process cannot enter a new mount
 * namespace, nor chroot without changing the root of threads it does not control. So this process does
 * everything that works from a multi-threaded process — builds the chroot and its device nodes, places itself
 * in the cgroup, joins the network namespace (setns(CLONE_NEWNET) is per thread, and the calling thread is
 * the one that execs), sets the rlimits, marks every inherited fd close-on-exec, clears the environment — then
 * execve()s `unshare`, which is single-threaded: it unshares the mount (and with --new-pid-ns the pid)
 * namespace, makes every mount private, chroots into the jail, sets the gid (dropping supplementary groups)
 * and the uid, and execs Node on petasan inside the jail. As with Firecracker's jailer, the jailed VMM keeps
 * the jailer's pid (with --new-pid-ns it is unshare's child, pid 1 in its namespace).
 */
import { existsSync, openSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { check } from "../sys/errors.js";
import { dup2, execve, fcntl, getsid, setns, setrlimit, unshare } from "../sys/libc.js";
import { buildJail, type JailLayout } from "./chroot.js";
import { cgroup2Mount, placeInCgroup } from "./cgroup.js";
import type { JailerArgs } from "./args.js";

const CLONE_NEWNET = 0x40000000;
const CLONE_NEWPID = 0x20000000;
const F_SETFD = 2;
const FD_CLOEXEC = 1;
const RLIMIT_FSIZE = 1;
const RLIMIT_NOFILE = 7;
const UNSHARE = "/usr/bin/unshare";
const SETSID = "/usr/bin/setsid";

export class JailerError extends Error {
  override readonly name = "JailerError";
}

/** The chroot folder: <chroot base>/<exec name>/<id>/root (Firecracker's layout). */
export function chrootDir(args: JailerArgs): string {
  return join(args.chrootBaseDir, args.execName, args.id, "root");
}

/**
 * Builds the jail and execs the VMM in it (returns only by throwing); with --new-pid-ns, starts the VMM as
 * this process's child in a new pid namespace and resolves once its pid file is written.
 */
export function jail(args: JailerArgs): Promise<void> {
  const startUs = process.hrtime.bigint() / 1000n;
  const { user, system } = process.cpuUsage();
  markInheritedFdsCloseOnExec();
  for (const tool of [UNSHARE, ...(args.daemonize ? [SETSID] : [])]) {
    if (!existsSync(tool)) throw new JailerError(`${tool} is missing (Debian's util-linux package)`);
  }
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
    // A failed jailer leaves nothing behind: the chroot it made, and the cgroup it made (it is still in it).
    rmSync(root, { recursive: true, force: true });
    try {
      rmdirSync(dirname(root));
    } catch {
      // <id>/ holds something else too: it stays.
    }
    if (cgroup !== undefined && args.cgroups.length > 0) leaveCgroup(cgroup, homeCgroup);
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
  const argv = [
    ...(args.daemonize ? [SETSID] : []),
    UNSHARE, "--mount", "--propagation", "private",
    "--root", root, "--wd", "/", "--setgid", String(args.gid), "--setuid", String(args.uid), "--", ...vmm,
  ];
  if (args.newPidNs) return startInNewPidNamespace(argv, join(root, `${args.execName}.pid`));
  // Firecracker clears the environment it was given: the VMM gets none.
  execve(argv[0], [...argv, null], [null]);
  throw new JailerError(`cannot exec ${argv[0]}: ${check(-1, "execve", argv[0])}`);
}

/**
 * --new-pid-ns (Firecracker's exec_into_new_pid_ns): the chain becomes init of a new pid namespace. If this
 * process leads its session, the child gets a session of its own, so that this process's exit does not send
 * it SIGHUP (Firecracker's reason too).
 */
function startInNewPidNamespace(argv: string[], pidFile: string): Promise<void> {
  check(unshare(CLONE_NEWPID), "unshare", "CLONE_NEWPID");
  const child = spawn(argv[0], argv.slice(1), { stdio: "inherit", env: {}, detached: getsid(0) === process.pid });
  return new Promise((resolve, reject) => {
    child.once("error", (error) => reject(new JailerError(`cannot start ${argv[0]}: ${error.message}`)));
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
