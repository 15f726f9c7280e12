import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_SECCOMP_POLICY, numbered, parseSeccompFilterFile, SeccompFileError, unionOf } from "./policy.js";
import { compileFilter, runFilter, SECCOMP_RET_ALLOW } from "../../sys/seccomp/bpf.js";
import { SYSCALLS_X86_64 } from "../../sys/seccomp/syscall-numbers.js";
import { TEST_VIOLATION_SYSCALL } from "../../sys/seccomp/install.js";

const PARTS = ["process", "main", "devices", "vcpu"] as const;

test("every list lets the SIGSYS handler run (write, prctl, exit_group) and holds no test-violation call", () => {
  for (const part of PARTS) {
    for (const name of ["write", "prctl", "exit_group"]) assert.ok(DEFAULT_SECCOMP_POLICY[part].syscalls.includes(name), `${part} lacks ${name}`);
    assert.ok(!numbered(DEFAULT_SECCOMP_POLICY[part]).syscalls.includes(TEST_VIOLATION_SYSCALL), part);
  }
});

test("the process filter allows what every thread's filter allows (a worker inherits it before narrowing)", () => {
  const processFilter = compileFilter(numbered(unionOf(DEFAULT_SECCOMP_POLICY)));
  for (const part of PARTS) {
    const rules = numbered(DEFAULT_SECCOMP_POLICY[part]);
    for (const nr of rules.syscalls) assert.equal(runFilter(processFilter, { nr }), SECCOMP_RET_ALLOW, `${part}: ${nr}`);
    for (const cmd of rules.ioctls) assert.equal(runFilter(processFilter, { nr: 16, args: [0n, BigInt(cmd)] }), SECCOMP_RET_ALLOW, `${part}: ioctl 0x${cmd.toString(16)}`);
  }
  // seccomp itself: each thread narrows itself under the process filter.
  assert.equal(runFilter(processFilter, { nr: SYSCALLS_X86_64.seccomp }), SECCOMP_RET_ALLOW);
});

test("a vCPU thread may KVM_RUN but not open files or create VMs", () => {
  const vcpu = compileFilter(numbered(DEFAULT_SECCOMP_POLICY.vcpu));
  assert.equal(runFilter(vcpu, { nr: 16, args: [0n, 0xae80n] }), SECCOMP_RET_ALLOW);
  assert.notEqual(runFilter(vcpu, { nr: 16, args: [0n, 0xae01n] }), SECCOMP_RET_ALLOW, "KVM_CREATE_VM");
  assert.notEqual(runFilter(vcpu, { nr: SYSCALLS_X86_64.openat }), SECCOMP_RET_ALLOW);
  assert.notEqual(runFilter(vcpu, { nr: SYSCALLS_X86_64.execve }), SECCOMP_RET_ALLOW);
});

const part = { syscalls: ["read", "write", "prctl", "exit_group"], ioctls: ["0x5401", 21505, "KVM_RUN"] };
const processPart = { ...part, syscalls: [...part.syscalls, "seccomp"] };

test("a filter file names each part's system calls and ioctls", () => {
  const policy = parseSeccompFilterFile(JSON.stringify({ process: processPart, main: part, devices: part, vcpu: { syscalls: ["write", "prctl", "exit_group"] } }), "f.json");
  assert.deepEqual(policy.main, { syscalls: ["read", "write", "prctl", "exit_group"], ioctls: [0x5401, 21505, 0xae80] });
  assert.deepEqual(policy.vcpu, { syscalls: ["write", "prctl", "exit_group"], ioctls: [] });
});

test("a bad filter file is refused in one line naming the file and the part", () => {
  const bad = (json: unknown, message: RegExp) =>
    assert.throws(() => parseSeccompFilterFile(typeof json === "string" ? json : JSON.stringify(json), "f.json"), (e: unknown) => e instanceof SeccompFileError && message.test(e.message) && !e.message.includes("\n"));
  bad("{", /^f\.json: not JSON/);
  bad([], /expected an object with "process", "main", "devices" and "vcpu"/);
  bad({ process: part, main: part, devices: part }, /^f\.json: vcpu: missing/);
  bad({ process: processPart, main: part, devices: part, vcpu: { syscalls: ["write", "prctl"] } }, /vcpu: must allow exit_group \(the SIGSYS handler/);
  bad({ process: part, main: part, devices: part, vcpu: part }, /process: must allow seccomp/);
  bad({ process: processPart, main: part, devices: part, vcpu: part, api: part }, /unknown part "api"/);
  bad({ process: part, main: part, devices: part, vcpu: { syscalls: ["reed"] } }, /vcpu: "reed" is not an x86-64 system call name/);
  bad({ process: part, main: part, devices: part, vcpu: { syscalls: ["ioctl"] } }, /ioctl is allowed through "ioctls"/);
  bad({ process: part, main: part, devices: part, vcpu: { ioctls: ["KVM_NOPE"] } }, /ioctl "KVM_NOPE" is not a request number/);
  bad({ process: part, main: part, devices: part, vcpu: { syscalls: [], action: "kill" } }, /unknown field "action"/);
});
