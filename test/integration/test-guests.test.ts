/**
 * Runs the tiny test guests in petasan through the CLI contract:
 *   node dist/src/cli/main.js run --kernel <elf> --serial stdio
 * stdout is the guest's serial output and stdin its serial input; the exit code is 0 when the guest
 * resets through the i8042, non-zero with a clear stderr message on a triple fault.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { buildTestGuest } from "../guests/build.js";
import { kvmSkipReason } from "./kvm-available.js";
import { startPetasan, type Finished } from "./petasan-process.js";
import { requireTool } from "../setup/host-tools.js";

/** Generous: ring-0 guest code is emulated on the test hosts, and two test processes share two cores. */
const RUN_TIMEOUT_MS = 60_000;
const skip = kvmSkipReason();

type GuestRun = Finished;

/** Runs `elf`; when stdout first contains `sendAfter.line`, writes `sendAfter.input` to the guest's serial input. */
async function runGuest(elf: string, sendAfter?: { line: string; input: string }, extraArgs: string[] = []): Promise<GuestRun> {
  const vm = startPetasan(["run", "--kernel", elf, "--serial", "stdio", ...extraArgs], RUN_TIMEOUT_MS);
  if (sendAfter) {
    await vm.waitFor(sendAfter.line).catch(() => {});
    vm.child.stdin!.write(sendAfter.input);
  }
  vm.child.stdin!.end();
  return vm.finished;
}

function explain(run: GuestRun): string {
  return `exit ${run.code ?? run.signal}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
}

test("realmode guest prints from 16-bit real mode and resets", { skip }, async () => {
  const run = await runGuest(await buildTestGuest("realmode"));
  assert.match(run.stdout, /realmode: hello from 16-bit\n/, explain(run));
  assert.equal(run.code, 0, explain(run));
});

test("long64 guest prints from long mode, sees an e820 table in the zero page, and resets", { skip }, async () => {
  const run = await runGuest(await buildTestGuest("long64"));
  assert.match(run.stdout, /long64: hello from 64-bit\n/, explain(run));
  assert.match(run.stdout, /long64: e820_entries=[1-9]\d*\n/, explain(run));
  assert.equal(run.code, 0, explain(run));
});

test("echo guest receives serial input by interrupt and echoes it uppercased", { skip }, async () => {
  const run = await runGuest(await buildTestGuest("echo"), { line: "echo: ready\n", input: "petasan 42q" });
  assert.match(run.stdout, /echo: ready\nPETASAN 42\necho: bye\n/, explain(run));
  assert.equal(run.code, 0, explain(run));
});

test("triplefault guest ends the VMM with a non-zero exit and says why", { skip }, async () => {
  const run = await runGuest(await buildTestGuest("triplefault"));
  assert.match(run.stdout, /triplefault: about to fault\n/, explain(run));
  assert.notEqual(run.code, 0, explain(run));
  assert.match(run.stderr, /triple fault|shutdown/i, explain(run));
  assert.match(run.stderr, /rip=0x[0-9a-f]{16}/, "a register dump");
});

test("unmapped guest: accesses outside RAM and devices read all ones and the VMM survives", { skip }, async () => {
  const run = await runGuest(await buildTestGuest("unmapped"));
  assert.match(run.stdout, /unmapped: touching\nunmapped: read=0xffffffff\n/, explain(run));
  assert.match(run.stdout, /unmapped: done\n/, explain(run));
  assert.equal(run.code, 0, explain(run));
});

test("guest RAM above the 32-bit MMIO hole: 6 GiB and 16 GiB guests get RAM from 4 GiB in their e820 map", { skip }, async () => {
  const elf = await buildTestGuest("long64");
  for (const memory of ["6G", "16G"]) {
    const run = await runGuest(elf, undefined, ["--memory", memory]);
    // 0..EBDA, EBDA..1 MiB reserved, 1 MiB..3 GiB, 4 GiB..: four entries.
    assert.match(run.stdout, /long64: e820_entries=4\n/, explain(run));
    assert.equal(run.code, 0, explain(run));
  }
});

test("a file that is not a kernel, and a missing file, are refused with a clear error", { skip }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "petasan-notkernel-"));
  const junk = path.join(dir, "notes.txt");
  writeFileSync(junk, "these are not the bytes you are looking for\n".repeat(100));
  const bad = await runGuest(junk);
  assert.equal(bad.code, 1, explain(bad));
  assert.match(bad.stderr, /not a Linux kernel/, explain(bad));
  const missing = await runGuest(path.join(dir, "absent"));
  assert.equal(missing.code, 1, explain(missing));
  assert.match(missing.stderr, /absent.*ENOENT|ENOENT.*absent/, explain(missing));
  // Said once, in one line (the library's own "VM ended" log line for a failed start is Info, below the default level).
  for (const run of [bad, missing]) assert.equal(run.stderr.trim().split("\n").length, 1, explain(run));
});

test("SIGTERM stops a running VM cleanly: vCPUs kicked out of KVM_RUN, exit code 0", { skip }, async () => {
  const vm = startPetasan(["run", "--kernel", await buildTestGuest("echo")], RUN_TIMEOUT_MS);
  await vm.waitFor("echo: ready");
  vm.child.kill("SIGTERM");
  const run = await vm.finished;
  assert.equal(run.code, 0, explain(run));
  assert.match(run.stderr, /stopped by SIGTERM/, explain(run));
});

test("on a terminal, Ctrl-A x quits and other keys reach the guest", { skip }, async () => {
  // `script` gives petasan a pseudo-terminal, so the console goes raw and Ctrl-A is the escape key.
  const elf = await buildTestGuest("echo");
  const vm = startPetasan(["run", "--kernel", elf], RUN_TIMEOUT_MS, (argv) => [requireTool("script"), "-qfec", argv.join(" "), "/dev/null"]);
  await vm.waitFor("echo: ready");
  vm.child.stdin!.write("hi");
  await vm.waitFor("HI");
  vm.child.stdin!.write("\x01x");
  const run = await vm.finished;
  assert.equal(run.code, 0, explain(run));
  assert.doesNotMatch(run.stdout, /echo: bye/, "the guest did not see the escape");
});
