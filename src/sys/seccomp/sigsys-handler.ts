/**
 * The SIGSYS handler that ends the process when a seccomp filter traps a system call, as Firecracker's
 * (src/vmm/src/signal_handler.rs: it logs "Shutting down VM after intercepting a bad syscall (N)." and exits
 * with FcExitCode::BadSyscall = 148).
 *
 * Why machine code: the signal arrives on the thread that made the call, which may be a vCPU or device worker
 * in the middle of JavaScript; a koffi callback or a libuv signal watcher would run JavaScript later, on the
 * main thread, after the trapped call has already returned -ENOSYS to its caller. The handler must be
 * async-signal-safe native code, and petasan ships no compiled library, so the handler is these few bytes,
 * assembled from sigsys-handler.S (as --64 sigsys-handler.S && objcopy -O binary -j .text; a test checks
 * the bytes against the source when binutils is installed), copied into an executable page at run time.
 * It writes "petasan: seccomp: Shutting down VM after intercepting a bad syscall (N) on thread NAME; exit
 * code 148" to stderr (NAME from PR_GET_NAME: petasan names its threads) and calls exit_group(148). It only
 * makes write, prctl and exit_group, which every petasan filter allows.
 */
import { errno, mmap, mprotect, sigaction, view } from "../libc.js";
import { SysError } from "../errors.js";

export const EXIT_BAD_SYSCALL = 148;

/** sigsys-handler.S, assembled (288 bytes: code, then the message's pieces). */
export const SIGSYS_HANDLER_CODE = Buffer.from(
  "448b66184883e4f04883ec40488d35ac000000ba45000000e895000000488d7c24204489e0b90a00000031d2f7f180c23048ffcf881785c075f04889fe488d5424204829fae868000000488d35b3000000ba0c000000e857000000b89d000000bf100000" +
    "00488d74242048c7060000000048c74608000000000f05488d74242031d2803c16007407ffc283fa1072f3e81e000000488d3575000000ba10000000e80d000000b8e7000000bf940000000f05f4b801000000bf020000000f05c37065746173616e3a20" +
    "736563636f6d703a205368757474696e6720646f776e20564d20616674657220696e74657263657074696e672061206261642073797363616c6c202829206f6e20746872656164203b206578697420636f6465203134380a",
  "hex",
);

const SIGSYS = 31;
const SA_SIGINFO = 4;
/** struct sigaction as glibc lays it out on x86-64: handler, 128-byte sa_mask, int sa_flags, restorer. */
const SIGACTION_SIZE = 152;
const SA_FLAGS_OFFSET = 136;
const PROT_READ = 1;
const PROT_WRITE = 2;
const PROT_EXEC = 4;
const MAP_PRIVATE = 0x02;
const MAP_ANONYMOUS = 0x20;
const MAP_FAILED = 0xffff_ffff_ffff_ffffn;
const PAGE = 4096;

/**
 * True once SIGSYS has a handler in this process (signal dispositions are per process, not per thread);
 * SIG_DFL (0) and SIG_IGN (1) are no handler: an ignored SIGSYS from seccomp would kill the process unexplained.
 */
function sigsysHandled(): boolean {
  const old = Buffer.alloc(SIGACTION_SIZE);
  if (sigaction(SIGSYS, null, old) < 0) throw new SysError("sigaction", errno(), "SIGSYS");
  return old.readBigUInt64LE(0) > 1n;
}

/** Installs the handler once per process; a second call (another thread, another VM) finds it in place. */
export function ensureSigsysHandler(): void {
  if (sigsysHandled()) return;
  const addr = mmap(null, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) as bigint;
  if (addr === MAP_FAILED) throw new SysError("mmap", errno(), "the SIGSYS handler's page");
  new Uint8Array(view(addr, PAGE)).set(SIGSYS_HANDLER_CODE);
  if (mprotect(addr, PAGE, PROT_READ | PROT_EXEC) < 0) throw new SysError("mprotect", errno(), "the SIGSYS handler's page");
  const act = Buffer.alloc(SIGACTION_SIZE);
  act.writeBigUInt64LE(addr, 0);
  act.writeInt32LE(SA_SIGINFO, SA_FLAGS_OFFSET);
  if (sigaction(SIGSYS, act, null) < 0) throw new SysError("sigaction", errno(), "SIGSYS");
}
