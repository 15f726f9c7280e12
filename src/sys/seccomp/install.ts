/**
 * Installing a filter on the calling thread (seccomp(2), Documentation/userspace-api/seccomp_filter.rst).
 * A filter binds the thread that installs it and the threads it creates afterwards; with TSYNC it binds every
 * thread of the process at once. Filters stack: a thread's system call must pass all of its filters.
 */
import { addressOf, errno, prctl, prctlPtr, seccompSyscall, syscall1 } from "../libc.js";
import { SysError } from "../errors.js";
import { ensureSigsysHandler } from "./sigsys-handler.js";

const PR_SET_NAME = 15;
const PR_SET_NO_NEW_PRIVS = 38;
const SYS_SECCOMP = 317;
const SECCOMP_SET_MODE_FILTER = 1;
const SECCOMP_FILTER_FLAG_TSYNC = 1;

/**
 * Installs `program` (compileFilter's bytes) on this thread, or with `allThreads` on every thread of the
 * process (which fails if another thread already has a filter this thread lacks). SIGSYS gets its handler
 * first, so a trapped call ends the process with Firecracker's message and exit code 148.
 */
export function installFilter(program: Uint8Array, options: { allThreads?: boolean } = {}): void {
  ensureSigsysHandler();
  // Without CAP_SYS_ADMIN the kernel takes a filter only from a thread that can gain no privileges by execve.
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) throw new SysError("prctl", errno(), "PR_SET_NO_NEW_PRIVS");
  const filter = Buffer.from(program);
  // struct sock_fprog { unsigned short len; struct sock_filter *filter; }
  const fprog = Buffer.alloc(16);
  fprog.writeUInt16LE(program.length / 8, 0);
  fprog.writeBigUInt64LE(addressOf(filter), 8);
  const ret = Number(seccompSyscall(SYS_SECCOMP, SECCOMP_SET_MODE_FILTER, options.allThreads ? SECCOMP_FILTER_FLAG_TSYNC : 0, fprog));
  if (ret < 0) throw new SysError("seccomp", errno(), "SECCOMP_SET_MODE_FILTER");
  if (ret > 0) throw new Error(`seccomp: thread ${ret} has a filter of its own, so the filter cannot be put on every thread`);
}

/** Names the calling thread (/proc/<pid>/task/<tid>/comm; at most 15 bytes): the SIGSYS message shows it. */
export function setThreadName(name: string): void {
  if (prctlPtr(PR_SET_NAME, Buffer.from(`${name.slice(0, 15)}\0`), 0, 0, 0) < 0) throw new SysError("prctl", errno(), "PR_SET_NAME");
}

/**
 * personality(0xffffffff) only reads the persona: harmless if it were allowed, and on no petasan list, so the
 * test-only hook can make a thread break its filter with it.
 */
export const TEST_VIOLATION_SYSCALL = 135;

/** The test-only hook's call: a denied system call on this thread (the process ends in the SIGSYS handler). */
export function makeDeniedSyscall(): never {
  syscall1(TEST_VIOLATION_SYSCALL, 0xffffffff);
  throw new Error("seccomp: the test violation was allowed: no filter is installed on this thread");
}
