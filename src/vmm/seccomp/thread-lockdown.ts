/**
 * The moment a petasan thread narrows itself: named (so /proc and the SIGSYS message say which thread it is),
 * then its seccomp filter, installed by the thread itself after its setup and before it serves the guest.
 */
import { installFilter, makeDeniedSyscall, setThreadName } from "../../sys/seccomp/install.js";

export type ThreadRole = "main" | "devices" | "vcpu";

/**
 * Test-only hook: with PETASAN_TEST_SECCOMP_VIOLATION set to a thread role, the thread of that role makes a
 * system call outside every list right after installing its filter, so a test sees the VMM end with
 * Firecracker's exit code and message. It never weakens a filter, and does nothing when no filter is installed.
 */
export const TEST_VIOLATION_ENV = "PETASAN_TEST_SECCOMP_VIOLATION";

export function lockDownThread(role: ThreadRole, name: string, filter: Uint8Array | undefined): void {
  setThreadName(name);
  if (filter === undefined) return;
  installFilter(filter);
  if (process.env[TEST_VIOLATION_ENV] === role) makeDeniedSyscall();
}

/**
 * The main thread's filters: `processFilter` on every thread of the process (TSYNC), once, before any VM
 * thread exists; then `lockDownThread("main", ...)` narrows the main thread alone once the VM runs.
 */
export function lockDownProcess(processFilter: Uint8Array): void {
  installFilter(processFilter, { allThreads: true });
}
