/**
 * Runs the tiny test guests in petasan through the CLI contract:
 *   node dist/src/cli/main.js run --kernel <elf> --serial stdio
 * stdout is the guest's serial output and stdin its serial input; the exit code is 0 when the guest
 * resets through the i8042, non-zero with a clear stderr message on a triple fault.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { buildTestGuest } from "../guests/build.js";

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../src/cli/main.js");
/** Generous: ring-0 guest code is emulated on the test hosts, and two test processes share two cores. */
const RUN_TIMEOUT_MS = 60_000;

function kvmUsable(): boolean {
  try {
    accessSync("/dev/kvm", constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

const skip = kvmUsable() ? false : "/dev/kvm is absent or not accessible";
if (skip) console.log(`#### SKIPPING test-guests integration tests: ${skip} ####`);

interface GuestRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `elf`; when stdout first contains `sendAfter.line`, writes `sendAfter.input` to the guest's serial input. */
function runGuest(elf: string, sendAfter?: { line: string; input: string }): Promise<GuestRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, "run", "--kernel", elf, "--serial", "stdio"], { stdio: "pipe" });
    let stdout = "";
    let stderr = "";
    let sent = false;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`guest ${path.basename(elf)} still running after ${RUN_TIMEOUT_MS} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, RUN_TIMEOUT_MS);
    child.stdout.setEncoding("latin1").on("data", (chunk: string) => {
      stdout += chunk;
      if (sendAfter && !sent && stdout.includes(sendAfter.line)) {
        sent = true;
        child.stdin.write(sendAfter.input);
      }
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
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
});

test("unmapped guest: accesses outside RAM and devices read all ones and the VMM survives", { skip }, async () => {
  const run = await runGuest(await buildTestGuest("unmapped"));
  assert.match(run.stdout, /unmapped: touching\nunmapped: read=0xffffffff\n/, explain(run));
  assert.match(run.stdout, /unmapped: done\n/, explain(run));
  assert.equal(run.code, 0, explain(run));
});
