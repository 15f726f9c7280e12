/**
 * Seccomp for programs that run one VMM per process (the `petasan` command): compile the per-thread filters,
 * put the process filter on every thread, and narrow the main thread once the VM runs. Not part of the
 * package's entry: a library user's process is theirs, so createVm installs filters only on the VM's own
 * threads, and only when given them (CreateVmOptions.seccomp).
 */
import { readFile } from "node:fs/promises";
import { compileFilter } from "../sys/seccomp/bpf.js";
import { DEFAULT_SECCOMP_POLICY, numbered, parseSeccompFilterFile, unionOf, type SeccompPolicy } from "../vmm/seccomp/policy.js";
import { lockDownProcess, lockDownThread } from "../vmm/seccomp/thread-lockdown.js";

export { SeccompFileError } from "../vmm/seccomp/policy.js";
export { EXIT_BAD_SYSCALL } from "../sys/seccomp/sigsys-handler.js";

/** Compiled BPF for each thread and for the whole process. */
export interface SeccompFilters {
  process: Uint8Array;
  main: Uint8Array;
  devices: Uint8Array;
  vcpu: Uint8Array;
}

export function compileSeccompPolicy(policy: SeccompPolicy = DEFAULT_SECCOMP_POLICY): SeccompFilters {
  return {
    process: compileFilter(numbered(unionOf(policy))),
    main: compileFilter(numbered(policy.main)),
    devices: compileFilter(numbered(policy.devices)),
    vcpu: compileFilter(numbered(policy.vcpu)),
  };
}

/** Reads a `--seccomp-filter` file (format: vmm/seccomp/policy.ts, README); throws SeccompFileError or an fs error. */
export async function loadSeccompFilterFile(path: string): Promise<SeccompPolicy> {
  return parseSeccompFilterFile(await readFile(path, "utf8"), path);
}

/** Before any VM thread: the process filter on every thread. */
export function lockDownProcessThreads(filters: SeccompFilters): void {
  lockDownProcess(filters.process);
}

/** Once the VM runs: names the main thread, and narrows it when filters are given. */
export function lockDownMainThread(filters: SeccompFilters | undefined): void {
  lockDownThread("main", "petasan", filters?.main);
}
