/**
 * A seccomp filter as classic BPF, built here rather than by a library (the kernel's
 * Documentation/userspace-api/seccomp_filter.rst and include/uapi/linux/{filter,seccomp}.h give the
 * encoding). The program checks the architecture first (a 32-bit or x32 system call has other numbers: it is
 * refused), then allows the listed system calls, ioctl only with a listed request number, and answers
 * anything else with `defaultAction`.
 *
 * Shape: `jeq nr, +0, +1; ret ALLOW` pairs, so no jump ever needs more than BPF's 8-bit offsets, however long
 * the list; ioctl is tested first and jumps to its own block with `ja` (a 32-bit offset). The kernel's BPF JIT
 * runs the program on every system call of the thread, so the hot call is tested first.
 */

/** struct sock_filter opcodes (include/uapi/linux/bpf_common.h). */
const BPF_LD_W_ABS = 0x20;
const BPF_JMP_JEQ_K = 0x15;
const BPF_JMP_JGE_K = 0x35;
const BPF_JMP_JA = 0x05;
const BPF_RET_K = 0x06;

/** struct seccomp_data offsets: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]. */
const DATA_NR = 0;
const DATA_ARCH = 4;
const dataArgLow = (i: number) => 16 + 8 * i;

/** AUDIT_ARCH_X86_64 (include/uapi/linux/audit.h): EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE. */
export const AUDIT_ARCH_X86_64 = 0xc000003e;
/** __X32_SYSCALL_BIT: x32 system calls are numbered from here. */
const X32_SYSCALL_BIT = 0x40000000;

/** Filter return values (include/uapi/linux/seccomp.h). */
export const SECCOMP_RET_KILL_PROCESS = 0x80000000;
export const SECCOMP_RET_TRAP = 0x00030000;
export const SECCOMP_RET_ALLOW = 0x7fff0000;

const SYS_IOCTL = 16;
/** One sock_filter is { u16 code; u8 jt; u8 jf; u32 k }. */
export const SOCK_FILTER_SIZE = 8;
/** BPF_MAXINSNS (include/uapi/linux/bpf_common.h): the kernel refuses longer programs. */
export const BPF_MAXINSNS = 4096;

export interface FilterRules {
  /** System call numbers allowed with any arguments (ioctl is never among them: see `ioctls`). */
  syscalls: readonly number[];
  /** ioctl request numbers allowed (the kernel's `unsigned int cmd`: only the low 32 bits count). */
  ioctls: readonly number[];
  /** What a system call outside the lists gets; default SECCOMP_RET_TRAP (SIGSYS, as Firecracker's "trap"). */
  defaultAction?: number;
}

export class FilterError extends Error {
  override readonly name = "FilterError";
}

interface Insn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

/** The filter as the bytes of a struct sock_filter array, ready for struct sock_fprog. */
export function compileFilter(rules: FilterRules): Uint8Array {
  const deny = rules.defaultAction ?? SECCOMP_RET_TRAP;
  const syscalls = [...new Set(rules.syscalls)].sort((a, b) => a - b);
  const ioctls = [...new Set(rules.ioctls.map((n) => n >>> 0))].sort((a, b) => a - b);
  for (const nr of syscalls) {
    if (!Number.isInteger(nr) || nr < 0 || nr >= X32_SYSCALL_BIT) throw new FilterError(`${nr} is not an x86-64 system call number`);
    if (nr === SYS_IOCTL) throw new FilterError("ioctl is allowed through its request numbers, not as a whole");
  }
  const prog: Insn[] = [
    { code: BPF_LD_W_ABS, jt: 0, jf: 0, k: DATA_ARCH },
    { code: BPF_JMP_JEQ_K, jt: 1, jf: 0, k: AUDIT_ARCH_X86_64 },
    { code: BPF_RET_K, jt: 0, jf: 0, k: SECCOMP_RET_KILL_PROCESS },
    { code: BPF_LD_W_ABS, jt: 0, jf: 0, k: DATA_NR },
    { code: BPF_JMP_JGE_K, jt: 0, jf: 1, k: X32_SYSCALL_BIT },
    { code: BPF_RET_K, jt: 0, jf: 0, k: deny },
  ];
  // ioctl first: a vCPU thread's KVM_RUN is the call made most often, so it is tested before the list. `ja`
  // jumps over the list and the final deny into the request checks (patched below, once the list's length is known).
  let ioctlJump = -1;
  if (ioctls.length > 0) {
    prog.push({ code: BPF_JMP_JEQ_K, jt: 0, jf: 1, k: SYS_IOCTL }, { code: BPF_JMP_JA, jt: 0, jf: 0, k: 0 });
    ioctlJump = prog.length - 1;
  }
  for (const nr of syscalls) {
    prog.push({ code: BPF_JMP_JEQ_K, jt: 0, jf: 1, k: nr }, { code: BPF_RET_K, jt: 0, jf: 0, k: SECCOMP_RET_ALLOW });
  }
  prog.push({ code: BPF_RET_K, jt: 0, jf: 0, k: deny });
  if (ioctlJump >= 0) prog[ioctlJump].k = prog.length - ioctlJump - 1;
  if (ioctls.length > 0) {
    prog.push({ code: BPF_LD_W_ABS, jt: 0, jf: 0, k: dataArgLow(1) });
    for (const cmd of ioctls) {
      prog.push({ code: BPF_JMP_JEQ_K, jt: 0, jf: 1, k: cmd }, { code: BPF_RET_K, jt: 0, jf: 0, k: SECCOMP_RET_ALLOW });
    }
    prog.push({ code: BPF_RET_K, jt: 0, jf: 0, k: deny });
  }
  if (prog.length > BPF_MAXINSNS) throw new FilterError(`the filter has ${prog.length} instructions; the kernel takes at most ${BPF_MAXINSNS}`);
  const bytes = new Uint8Array(prog.length * SOCK_FILTER_SIZE);
  const dv = new DataView(bytes.buffer);
  prog.forEach((insn, i) => {
    dv.setUint16(i * 8, insn.code, true);
    dv.setUint8(i * 8 + 2, insn.jt);
    dv.setUint8(i * 8 + 3, insn.jf);
    dv.setUint32(i * 8 + 4, insn.k >>> 0, true);
  });
  return bytes;
}

/** What the seccomp_data a filter sees holds (for running a filter in tests). */
export interface SeccompData {
  nr: number;
  arch?: number;
  args?: readonly bigint[];
}

/**
 * Runs a compiled filter the way the kernel would, for the instructions compileFilter emits (tests check
 * decisions with it without installing anything).
 */
export function runFilter(program: Uint8Array, data: SeccompData): number {
  const dv = new DataView(program.buffer, program.byteOffset, program.byteLength);
  const mem = new DataView(new ArrayBuffer(64));
  mem.setInt32(DATA_NR, data.nr, true);
  mem.setUint32(DATA_ARCH, data.arch ?? AUDIT_ARCH_X86_64, true);
  (data.args ?? []).forEach((a, i) => mem.setBigUint64(16 + 8 * i, a, true));
  let acc = 0;
  for (let pc = 0; pc * 8 < program.byteLength; pc++) {
    const code = dv.getUint16(pc * 8, true);
    const jt = dv.getUint8(pc * 8 + 2);
    const jf = dv.getUint8(pc * 8 + 3);
    const k = dv.getUint32(pc * 8 + 4, true);
    switch (code) {
      case BPF_LD_W_ABS: acc = mem.getUint32(k, true); break;
      case BPF_JMP_JEQ_K: pc += acc === k ? jt : jf; break;
      case BPF_JMP_JGE_K: pc += acc >= k ? jt : jf; break;
      case BPF_JMP_JA: pc += k; break;
      case BPF_RET_K: return k;
      default: throw new FilterError(`unknown BPF opcode 0x${code.toString(16)} at ${pc}`);
    }
  }
  throw new FilterError("the program ran off its end");
}
