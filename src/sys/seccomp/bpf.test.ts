import { test } from "node:test";
import assert from "node:assert/strict";
import { AUDIT_ARCH_X86_64, BPF_MAXINSNS, compileFilter, FilterError, runFilter, SECCOMP_RET_ALLOW, SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_TRAP } from "./bpf.js";

const READ = 0;
const WRITE = 1;
const IOCTL = 16;
const KVM_RUN = 0xae80;

test("listed system calls are allowed, others trapped; ioctl only with a listed request", () => {
  const prog = compileFilter({ syscalls: [READ, WRITE], ioctls: [KVM_RUN] });
  assert.equal(runFilter(prog, { nr: READ }), SECCOMP_RET_ALLOW);
  assert.equal(runFilter(prog, { nr: WRITE }), SECCOMP_RET_ALLOW);
  assert.equal(runFilter(prog, { nr: 2 }), SECCOMP_RET_TRAP);
  assert.equal(runFilter(prog, { nr: IOCTL, args: [3n, BigInt(KVM_RUN)] }), SECCOMP_RET_ALLOW);
  assert.equal(runFilter(prog, { nr: IOCTL, args: [3n, 0xae81n] }), SECCOMP_RET_TRAP);
  // The kernel's ioctl takes an unsigned int cmd: the upper half of the register does not matter.
  assert.equal(runFilter(prog, { nr: IOCTL, args: [3n, (1n << 32n) | BigInt(KVM_RUN)] }), SECCOMP_RET_ALLOW);
});

test("another architecture is killed and x32 system call numbers are refused", () => {
  const prog = compileFilter({ syscalls: [READ], ioctls: [] });
  assert.equal(runFilter(prog, { nr: READ, arch: 0x40000003 /* AUDIT_ARCH_I386 */ }), SECCOMP_RET_KILL_PROCESS);
  assert.equal(runFilter(prog, { nr: READ, arch: AUDIT_ARCH_X86_64 }), SECCOMP_RET_ALLOW);
  assert.equal(runFilter(prog, { nr: 0x40000000 | READ }), SECCOMP_RET_TRAP);
});

test("no ioctl at all when no request is listed; long lists need no long jumps", () => {
  assert.equal(runFilter(compileFilter({ syscalls: [READ], ioctls: [] }), { nr: IOCTL, args: [0n, BigInt(KVM_RUN)] }), SECCOMP_RET_TRAP);
  const many = Array.from({ length: 400 }, (_, i) => i).filter((n) => n !== IOCTL);
  const prog = compileFilter({ syscalls: many, ioctls: Array.from({ length: 300 }, (_, i) => 0x1000 + i) });
  for (const nr of [0, 200, 399]) assert.equal(runFilter(prog, { nr }), SECCOMP_RET_ALLOW);
  assert.equal(runFilter(prog, { nr: 400 }), SECCOMP_RET_TRAP);
  assert.equal(runFilter(prog, { nr: IOCTL, args: [0n, 0x1000n + 299n] }), SECCOMP_RET_ALLOW);
  assert.equal(runFilter(prog, { nr: IOCTL, args: [0n, 0x1000n + 300n] }), SECCOMP_RET_TRAP);
});

test("bad rules are refused in one line: ioctl as a whole, a bad number, a program the kernel would not take", () => {
  assert.throws(() => compileFilter({ syscalls: [IOCTL], ioctls: [] }), (e: unknown) => e instanceof FilterError && /by|through its request/.test(e.message));
  assert.throws(() => compileFilter({ syscalls: [-1], ioctls: [] }), FilterError);
  assert.throws(() => compileFilter({ syscalls: [], ioctls: Array.from({ length: BPF_MAXINSNS }, (_, i) => i) }), /at most 4096/);
});
