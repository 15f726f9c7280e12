/**
 * SMP through the CLI: the smp test guest finds the CPUs in petasan's MP table, starts the APs with
 * INIT-SIPI-SIPI through the in-kernel LAPIC, and every CPU reports its LAPIC id and CPUID.1:EBX[31:24].
 * With `smp.lines=N` each CPU also prints N numbered lines, each whole under the guest's own spinlock, so
 * every byte the VMM drops or misplaces while serving exits from several vCPUs at once shows in the output.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { buildTestGuest } from "../guests/build.js";
import { kvmSkipReason } from "./kvm-available.js";
import { runPetasan, type Finished } from "./petasan-process.js";

/** Generous: guest ring-0 code is emulated on the test hosts and the suite shares two cores. */
const RUN_TIMEOUT_MS = 90_000;
const HAMMER_LINES_PER_CPU = 200;
/** The guest's fixed tail of every numbered line (test/guests/smp.c, print_lines). */
const LINE_TAIL = "the quick brown fox jumps over the lazy dog";

const skip = kvmSkipReason() ?? false;

function explain(run: Finished): string {
  return `exit ${run.code ?? run.signal}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
}

async function runSmpGuest(cpus: number, cmdline?: string): Promise<Finished> {
  const args = ["run", "--kernel", await buildTestGuest("smp"), "--cpus", String(cpus), "--serial", "stdio"];
  return runPetasan(cmdline ? [...args, "--cmdline", cmdline] : args, RUN_TIMEOUT_MS);
}

/** APIC id -> the CPUID initial APIC id that CPU reported, from the "up" lines. */
function cpusReportedUp(stdout: string): Map<number, number> {
  const up = new Map<number, number>();
  for (const m of stdout.matchAll(/^smp: cpu (\d+) up \(cpuid apic id (\d+)\)$/gm)) {
    assert.ok(!up.has(Number(m[1])), `cpu ${m[1]} reported twice`);
    up.set(Number(m[1]), Number(m[2]));
  }
  return up;
}

for (const cpus of [1, 2, 4]) {
  test(`smp guest with --cpus ${cpus}: every CPU comes up with CPUID's APIC id equal to its LAPIC id`, { skip }, async () => {
    const run = await runSmpGuest(cpus);
    assert.equal(run.code, 0, explain(run));
    const up = cpusReportedUp(run.stdout);
    assert.deepEqual([...up.keys()].sort((a, b) => a - b), Array.from({ length: cpus }, (_, i) => i), explain(run));
    for (const [lapicId, cpuidId] of up) assert.equal(cpuidId, lapicId, `cpu ${lapicId}: CPUID.1:EBX[31:24] is ${cpuidId}\n${explain(run)}`);
    assert.match(run.stdout, new RegExp(`^smp: ${cpus} cpus up$`, "m"), explain(run));
  });
}

test("two vCPUs writing the UART at once: every line arrives whole, none lost, and the VMM exits 0", { skip }, async () => {
  const run = await runSmpGuest(2, `smp.lines=${HAMMER_LINES_PER_CPU}`);
  assert.equal(run.code, 0, explain(run));
  const next = new Map<number, number>([[0, 0], [1, 0]]);
  const lines = run.stdout.split("\n");
  assert.equal(lines.pop(), "", "output ends with a newline");
  for (const line of lines) {
    if (/^smp: (cpu \d+ up \(cpuid apic id \d+\)|2 cpus up)$/.test(line)) continue;
    const m = /^smp: cpu (\d+) line (\d+) (.*)$/.exec(line);
    assert.ok(m && m[3] === LINE_TAIL && next.has(Number(m[1])), `damaged line ${JSON.stringify(line)}`);
    const cpu = Number(m[1]);
    assert.equal(Number(m[2]), next.get(cpu), `cpu ${cpu}: line ${m[2]} out of order or one lost`);
    next.set(cpu, Number(m[2]) + 1);
  }
  assert.deepEqual([...next.values()], [HAMMER_LINES_PER_CPU, HAMMER_LINES_PER_CPU], "every line of both CPUs arrived");
  assert.match(run.stdout, /^smp: 2 cpus up$/m);
});
