/**
 * Which system calls (and ioctl requests) each petasan thread may make, and the filter file that replaces
 * these lists (`--seccomp-filter FILE`).
 *
 * Threads and their filters (Firecracker gives its vmm, api and vcpu threads one filter each,
 * resources/seccomp/x86_64-unknown-linux-musl.json; petasan's threads are Node's):
 * - `vcpu`: each vCPU worker, installed by the worker before its first KVM_RUN.
 * - `devices`: the device worker, installed once every device is open, before it serves the guest.
 * - `main`: the main thread (the API server, the VM's controller), installed once the VM runs.
 * - `process`: the union of the three and of `process`'s own list (what threads do before narrowing),
 *   installed by the main thread on every thread of the process (TSYNC) before any VM thread exists. It is
 *   what bounds the threads Node and V8 made at start-up (V8's platform workers, libuv's thread pool), which
 *   no petasan code runs on; every worker created later inherits it and narrows it with its own filter
 *   (filters stack: a call must pass all of a thread's filters). A thread Node starts after the main thread
 *   narrowed itself inherits the main thread's filters.
 *
 * How the lists were found: `strace -f -ff` over the small test guests' integration tests
 * (test/integration/*.test.ts but linux-guest) with the filters off, each thread told apart by the name petasan
 * gives it just before it installs its filter (PR_SET_NAME: petasan, petasan-devices, petasan-vcpuN): the calls
 * a thread made after naming itself are its list; what threads made before (start-up, building the VM, V8's
 * and libuv's threads) is the `process` list. Calls the runs did not reach were added by reading the code
 * (named in the comments below). Then the same tests ran with the filters on, which added the few calls
 * they still met (readlink, getcwd, dup3, TIOCGPTN: terminals and error paths), and one Linux boot with an
 * ext4 root on virtio-blk, virtio-rng, virtio-net and vsock (linux-guest.test.ts) ran with the filters on under
 * `strace -f --seccomp-bpf` (every call but the frequent ones traced): it passed, and the device thread's calls
 * it showed (preadv, pwritev, fallocate, getrandom, socket, connect, accept4, sendto, shutdown) were already
 * listed from the code.
 */
import { SYSCALLS_X86_64 } from "../../sys/seccomp/syscall-numbers.js";
import { IOCTL_NAMES } from "../../kvm/ioctls.js";
import type { ThreadRole } from "./thread-lockdown.js";

export interface ThreadRules {
  /** System call names (x86-64), ioctl excluded. */
  syscalls: readonly string[];
  /** ioctl request numbers. */
  ioctls: readonly number[];
}

/** The three thread filters, and `process`: what threads may do before they narrow themselves. */
export type PolicyPart = ThreadRole | "process";
export type SeccompPolicy = Readonly<Record<PolicyPart, ThreadRules>>;

const TCGETS = 0x5401;
const TCSETS = 0x5402;
const TCSETSW = 0x5403;
const TIOCGWINSZ = 0x5413;
const FIONREAD = 0x541b;
const FIONBIO = 0x5421;
const FIONCLEX = 0x5450;
const FIOCLEX = 0x5451;
/** _IOR('T', 0x30, unsigned int): libuv's uv_tty_init asks whether a terminal is a pty's. */
const TIOCGPTN = 0x80045430;
const TUNSETIFF = 0x400454ca;
const TUNSETOFFLOAD = 0x400454d0;
const TUNSETVNETHDRSZ = 0x400454d8;

/**
 * In every list: what the SIGSYS handler makes (write, prctl PR_GET_NAME, exit_group), and what any Node thread
 * running JavaScript needs (V8's heap: mmap/munmap/mprotect/madvise; futexes; the signal a vCPU is kicked with,
 * which libuv's handler forwards with a write; thread exit).
 */
/** Reading a VM's and a vCPU's state for a snapshot (src/kvm/state.ts): read-only KVM ioctls. */
const SNAPSHOT_VM_READS = [IOCTL_NAMES.KVM_GET_IRQCHIP, IOCTL_NAMES.KVM_GET_PIT2, IOCTL_NAMES.KVM_GET_CLOCK, IOCTL_NAMES.KVM_GET_DIRTY_LOG];
const SNAPSHOT_VCPU_READS = [
  IOCTL_NAMES.KVM_GET_REGS, IOCTL_NAMES.KVM_GET_SREGS, IOCTL_NAMES.KVM_GET_XSAVE, IOCTL_NAMES.KVM_GET_XSAVE2, IOCTL_NAMES.KVM_GET_XCRS,
  IOCTL_NAMES.KVM_GET_DEBUGREGS, IOCTL_NAMES.KVM_GET_LAPIC, IOCTL_NAMES.KVM_GET_MP_STATE, IOCTL_NAMES.KVM_GET_VCPU_EVENTS,
  IOCTL_NAMES.KVM_GET_MSRS, IOCTL_NAMES.KVM_GET_CPUID2, IOCTL_NAMES.KVM_GET_MSR_INDEX_LIST, IOCTL_NAMES.KVM_CHECK_EXTENSION,
  IOCTL_NAMES.KVM_KVMCLOCK_CTRL,
];
/** Writing a snapshot's files: a temporary file, sized, written, then renamed over the target (and removed on failure). */
const SNAPSHOT_FILE_WRITES = ["ftruncate", "fsync", "rename", "renameat", "renameat2", "unlinkat", "mkdir", "mkdirat"];

const EVERY_THREAD = [
  "read", "write", "close", "mmap", "munmap", "mprotect", "madvise", "brk", "futex", "sched_yield", "nanosleep",
  "clock_gettime", "clock_nanosleep", "getpid", "gettid", "rt_sigprocmask", "rt_sigreturn", "prctl", "exit", "exit_group",
  "epoll_wait", "epoll_pwait",
];

export const DEFAULT_SECCOMP_POLICY: SeccompPolicy = {
  // Measured: epoll_pwait (a worker's idle libuv loop), KVM_RUN; KVM_GET_REGS/SREGS for the register dump
  // when the vCPU fails. Device registers served on this thread (vcpu/registers.ts): write (the UART's
  // output, the log), futex (a device's lock), KVM_IRQ_LINE (the UART's and the i8042's lines).
  vcpu: {
    syscalls: [...EVERY_THREAD],
    ioctls: [IOCTL_NAMES.KVM_RUN, IOCTL_NAMES.KVM_GET_REGS, IOCTL_NAMES.KVM_GET_SREGS, IOCTL_NAMES.KVM_IRQ_LINE],
  },
  // Measured: epoll_wait/epoll_ctl, disk I/O (pread64/pwrite64/fdatasync/lseek), PATCH /drives (openat,
  // newfstatat, readlink), vsock's uds_path (unlink), KVM_IRQ_LINE for the legacy lines. Read in the code,
  // not reached by the runs: preadv/pwritev/fallocate (virtio-blk scatter lists and discard), readv/writev and
  // TUNSETOFFLOAD (virtio-net: the guest's offload features), accept4/connect/socket/shutdown/sendto/recvfrom
  // (vsock connections), getrandom (virtio-rng's source).
  devices: {
    syscalls: [
      ...EVERY_THREAD, "epoll_ctl", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "fdatasync", "fallocate",
      "lseek", "openat", "fstat", "newfstatat", "statx", "readlink", "unlink", "fcntl", "socket", "accept4", "connect",
      "shutdown", "sendto", "recvfrom", "getsockopt", "getrandom",
      // From the code, for what came after the measurement: each virtio device's timerfd, armed at run time (rate
      // limiters, kick budgets, the balloon's statistics polling); a snapshot's memory file and VM state.
      "timerfd_settime", ...SNAPSHOT_FILE_WRITES,
      // Opening a VM's devices: the device thread is shared by the VMs of a process (vmm/device-thread-host.ts) and
      // narrows itself once, after its first VM's devices are open, so a VM started later opens its own under this
      // filter: each device's timerfd, vsock's listening socket (bind, listen), the tap (TUNSETIFF, TUNSETVNETHDRSZ
      // below); image files need only openat/fstat, listed above. Found by starting a second VM with a drive, rng,
      // vsock and a tap in a process whose device thread was narrowed (test/integration/seccomp.test.ts).
      "timerfd_create", "bind", "listen",
    ],
    ioctls: [IOCTL_NAMES.KVM_IRQ_LINE, TUNSETOFFLOAD, FIONBIO, ...SNAPSHOT_VM_READS, TUNSETIFF, TUNSETVNETHDRSZ],
  },
  // Measured: the API (accept4, getsockname, getsockopt, read/write/writev, shutdown), the end (unlink of the
  // socket, fsync of the metrics), kicks (tgkill), the console (TCGETS, FIONBIO; TIOCGPTN, TCSETS and
  // TCSETSW when stdio is a terminal: Node opens process.stdout/stderr on first use, possibly after the lockdown,
  // and libuv reopens the terminal (ttyname: readlink; openat, dup3)). From the code: PUT/PATCH
  // after boot open and check files (openat, newfstatat, statx, fstat, lseek, pread64), V8 and libuv may start
  // a thread (clone3; clone is glibc's fallback), and eventfd2 for a new async handle. Found by the tests with
  // the filters on: readlink (and getcwd) when the VM ends with an error (Node resolving a stack's paths).
  main: {
    syscalls: [
      ...EVERY_THREAD, "epoll_ctl", "rt_sigaction", "tgkill", "accept4", "getsockname", "getsockopt", "shutdown",
      "writev", "unlink", "fsync", "fdatasync", "fcntl", "readlink", "getcwd", "dup3", "openat", "fstat", "newfstatat",
      "statx", "lseek", "pread64", "pwrite64", "ftruncate", "getrandom", "getrusage", "eventfd2", "clone", "clone3",
      "set_robust_list", "rseq", "sigaltstack", "mremap", "sched_getaffinity",
      // From the code: PUT /snapshot/create (the vCPUs' state, read here while they are paused, and the state
      // file), KVMCLOCK_CTRL on every pause.
      ...SNAPSHOT_FILE_WRITES,
    ],
    ioctls: [TCGETS, TCSETS, TCSETSW, TIOCGWINSZ, TIOCGPTN, FIONREAD, FIONBIO, FIONCLEX, FIOCLEX, ...SNAPSHOT_VCPU_READS],
  },
  // Measured: what the main thread did from the process filter's installation to its own (building the VM at
  // InstanceStart: /dev/kvm's ioctls, guest RAM, worker threads), what the workers did before narrowing (a
  // worker's start-up, opening images, taps and vsock sockets), and V8's and libuv's own threads; and seccomp
  // itself, which each thread calls under this filter to narrow itself.
  process: {
    syscalls: [
      ...EVERY_THREAD, "seccomp", "epoll_create1", "epoll_ctl", "eventfd2", "pipe2", "socket", "socketpair", "bind",
      "listen", "accept4", "connect", "shutdown", "getsockname", "getsockopt", "openat", "fstat", "newfstatat", "statx", "readlink", "lseek", "pread64",
      "fallocate", "unlink", "fcntl", "dup3", "fsync", "writev", "getcwd", "getuid", "geteuid", "getgid", "getegid", "capget",
      "getrandom", "getrusage", "sysinfo", "uname", "prlimit64", "sched_getaffinity", "clone", "clone3", "set_robust_list",
      "rseq", "rt_sigaction", "sigaltstack", "tgkill", "mremap", "access", "arch_prctl", "set_tid_address", "pkey_alloc",
      // From the code, for what came after the measurement: the virtio devices' timerfds (made as the device thread
      // opens its devices), NUMA placement (mbind of guest RAM; each vCPU thread pins itself before narrowing),
      // restoring and writing snapshots.
      "timerfd_create", "timerfd_settime", "mbind", "sched_setaffinity", ...SNAPSHOT_FILE_WRITES,
    ],
    ioctls: [...Object.values(IOCTL_NAMES), TUNSETIFF, TUNSETVNETHDRSZ, TCGETS, TIOCGWINSZ, FIONBIO, FIOCLEX],
  },
};

export class SeccompFileError extends Error {
  override readonly name = "SeccompFileError";
}

const ROLES: readonly PolicyPart[] = ["process", "main", "devices", "vcpu"];

/**
 * A filter file: JSON with one object per part, each naming its system calls and its ioctl requests (numbers,
 * "0x..." text or petasan's KVM ioctl names). All four parts must be there; nothing else may be:
 * `{"process": {...}, "main": {"syscalls": ["read", ...], "ioctls": ["0x5401"]}, "devices": {...}, "vcpu": {...}}`
 */
export function parseSeccompFilterFile(text: string, source: string): SeccompPolicy {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new SeccompFileError(`${source}: not JSON: ${(error as Error).message}`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw new SeccompFileError(`${source}: expected an object with "process", "main", "devices" and "vcpu"`);
  const obj = json as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!ROLES.includes(key as PolicyPart)) throw new SeccompFileError(`${source}: unknown part "${key}" (expected process, main, devices and vcpu)`);
  }
  const rules = (role: PolicyPart): ThreadRules => {
    const where = `${source}: ${role}`;
    const t = obj[role];
    if (typeof t !== "object" || t === null || Array.isArray(t)) throw new SeccompFileError(`${where}: missing, or not an object`);
    const { syscalls = [], ioctls = [], ...rest } = t as Record<string, unknown>;
    const extra = Object.keys(rest);
    if (extra.length > 0) throw new SeccompFileError(`${where}: unknown field "${extra[0]}" (expected syscalls and ioctls)`);
    if (!Array.isArray(syscalls) || !Array.isArray(ioctls)) throw new SeccompFileError(`${where}: syscalls and ioctls must be arrays`);
    for (const name of syscalls) {
      if (typeof name !== "string" || SYSCALLS_X86_64[name] === undefined) throw new SeccompFileError(`${where}: ${JSON.stringify(name)} is not an x86-64 system call name`);
      if (name === "ioctl") throw new SeccompFileError(`${where}: ioctl is allowed through "ioctls", by request number`);
    }
    return { syscalls: syscalls as string[], ioctls: ioctls.map((i) => ioctlNumber(i, where)) };
  };
  const policy = { process: rules("process"), main: rules("main"), devices: rules("devices"), vcpu: rules("vcpu") };
  // Without these the filters cannot work at all: a thread could not narrow itself, and the SIGSYS handler
  // could not report and end the process (the kernel would kill it with no word).
  for (const role of ROLES) {
    for (const name of SIGSYS_HANDLER_CALLS) {
      if (!policy[role].syscalls.includes(name)) throw new SeccompFileError(`${source}: ${role}: must allow ${name} (the SIGSYS handler needs write, prctl and exit_group)`);
    }
  }
  if (!policy.process.syscalls.includes("seccomp")) throw new SeccompFileError(`${source}: process: must allow seccomp (each thread installs its own filter under it)`);
  return policy;
}

/** The system calls sigsys-handler.S makes. */
const SIGSYS_HANDLER_CALLS = ["write", "prctl", "exit_group"];

function ioctlNumber(value: unknown, where: string): number {
  if (typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= 0xffffffff) return value;
  if (typeof value === "string") {
    if (/^0x[0-9a-f]{1,8}$/i.test(value)) return Number(value);
    if (IOCTL_NAMES[value] !== undefined) return IOCTL_NAMES[value];
  }
  throw new SeccompFileError(`${where}: ioctl ${JSON.stringify(value)} is not a request number (0..0xffffffff, "0x..." or a KVM_ name)`);
}

/** A thread's rules as numbers, for compileFilter. */
export function numbered(rules: ThreadRules): { syscalls: number[]; ioctls: number[] } {
  return { syscalls: rules.syscalls.map((n) => SYSCALLS_X86_64[n]), ioctls: [...rules.ioctls] };
}

/** The process filter: every list together (a worker inherits it, then narrows it with its own). */
export function unionOf(policy: SeccompPolicy): ThreadRules {
  return {
    syscalls: [...new Set(ROLES.flatMap((r) => policy[r].syscalls))],
    ioctls: [...new Set(ROLES.flatMap((r) => policy[r].ioctls))],
  };
}
