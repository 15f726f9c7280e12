/**
 * virtio-blk end to end with a tiny guest driver (test/guests/virtio-blk.c) instead of Linux: the guest
 * negotiates, sets up a queue, writes a pattern at sector 8, flushes and reads it back by polling the used
 * ring, then halts; the test kills the VMM and looks at the image file itself. Also: a read-only drive
 * refuses the write, and broken descriptor chains from the guest are completed with an error and logged
 * while the device and the VMM carry on. (virtio-blk-rate-limit.test.ts times the same guest's reads
 * against a drive's rate limiter.)
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildTestGuest } from "../guests/build.js";
import { kvmSkipReason } from "./kvm-available.js";
import { startPetasan, type Finished } from "./petasan-process.js";

const skip = kvmSkipReason();
/** A safety net only: each run takes a few seconds; ring-0 guest code may be emulated and the cores shared. */
const RUN_TIMEOUT_MS = 60_000;
const IMAGE_BYTES = 1024 * 1024;
// What the guest writes (test/guests/virtio-blk.c): 4 KiB at sector 8, sectors of 512 bytes (virtio 1.2 §5.2.6).
const SECTOR_SIZE = 512;
const PATTERN_SECTOR = 8;
const PATTERN_BYTES = 4096;
const DONE = "virtio-blk: done\n";

let guestElf: string;
let work: string;

before(async () => {
  if (skip) return;
  guestElf = await buildTestGuest("virtio-blk");
  work = mkdtempSync(join(tmpdir(), "petasan-virtio-blk-"));
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** The guest's pattern: "PETASAN-PATTERN-" repeated, each sector ending "SECTOR-nnnnnnnn\n" (its number). */
function expectedPattern(): Buffer {
  const out = Buffer.alloc(PATTERN_BYTES);
  for (let s = 0; s < PATTERN_BYTES / SECTOR_SIZE; s++) {
    const sector = Buffer.from("PETASAN-PATTERN-".repeat(SECTOR_SIZE / 16 - 1) + `SECTOR-${String(PATTERN_SECTOR + s).padStart(8, "0")}\n`, "latin1");
    sector.copy(out, s * SECTOR_SIZE);
  }
  return out;
}

/** An image of zeros except for a marker at the pattern's place, so "unchanged" is not just "zero". */
function makeImage(name: string): { path: string; original: Buffer } {
  const original = Buffer.alloc(IMAGE_BYTES);
  original.write("ORIGINAL-IMAGE-CONTENT", PATTERN_SECTOR * SECTOR_SIZE, "latin1");
  const path = join(work, name);
  writeFileSync(path, original);
  return { path, original };
}

/** Runs the guest until it prints its last line, then SIGKILLs the VMM (the guest halts forever). */
async function runUntilDone(args: string[]): Promise<Finished> {
  const vm = startPetasan(["run", "--kernel", guestElf, "--serial", "stdio", "--log-level", "Warning", ...args], RUN_TIMEOUT_MS);
  vm.child.stdin!.end();
  try {
    await vm.waitFor(DONE);
  } catch {
    // The VMM ended early: `finished` below has what it printed, and the assertions say what is missing.
  } finally {
    vm.child.kill("SIGKILL");
  }
  return vm.finished;
}

function explain(run: Finished): string {
  return `exit ${run.code ?? run.signal}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
}

function assertSurvivedUntilKilled(run: Finished): void {
  assert.ok(run.stdout.includes(DONE), explain(run));
  assert.equal(run.signal, "SIGKILL", `the VMM should have been running until killed\n${explain(run)}`);
  assert.doesNotMatch(run.stdout, /FAILED/, explain(run));
}

test("the guest's write at sector 8 reaches the image file, flushed and read back", { skip, timeout: RUN_TIMEOUT_MS + 10_000 }, async () => {
  const image = makeImage("writable.img");
  const run = await runUntilDone(["--drive", `path=${image.path}`]);
  assertSurvivedUntilKilled(run);
  assert.match(run.stdout, new RegExp(`virtio-blk: capacity ${IMAGE_BYTES / SECTOR_SIZE} sectors\n`), explain(run));
  assert.match(run.stdout, /virtio-blk: wrote\+flushed pattern, status 0\n/, explain(run));
  assert.match(run.stdout, /virtio-blk: read back matches, status 0, used len 4097\n/, explain(run));

  const after = readFileSync(image.path);
  assert.equal(after.length, IMAGE_BYTES);
  const at = PATTERN_SECTOR * SECTOR_SIZE;
  assert.ok(after.subarray(at, at + PATTERN_BYTES).equals(expectedPattern()), "the pattern is at byte 4096 of the image");
  assert.ok(after.subarray(0, at).equals(image.original.subarray(0, at)), "bytes before the pattern are untouched");
  assert.ok(after.subarray(at + PATTERN_BYTES).equals(image.original.subarray(at + PATTERN_BYTES)), "bytes after the pattern are untouched");
});

test("a read-only drive refuses the guest's write and the image stays as it was", { skip, timeout: RUN_TIMEOUT_MS + 10_000 }, async () => {
  const image = makeImage("readonly.img");
  const run = await runUntilDone(["--drive", `path=${image.path},ro`]);
  assertSurvivedUntilKilled(run);
  assert.match(run.stdout, /virtio-blk: write refused, status 1\n/, explain(run));
  assert.doesNotMatch(run.stdout, /wrote\+flushed/, explain(run));
  assert.ok(readFileSync(image.path).equals(image.original), "the read-only image is unchanged");
});

test("broken descriptor chains are completed with an error and logged; the device and the VMM carry on", { skip, timeout: RUN_TIMEOUT_MS + 10_000 }, async () => {
  const image = makeImage("hostile.img");
  const run = await runUntilDone(["--drive", `path=${image.path}`, "--cmdline", "console=ttyS0 hostile"]);
  assertSurvivedUntilKilled(run);
  // Neither chain can be parsed, so the device finds no status byte to write: used length 0, status untouched (0xff).
  assert.match(run.stdout, /virtio-blk: hostile chain outside RAM completed, status 255, used len 0\n/, explain(run));
  assert.match(run.stdout, /virtio-blk: hostile looping chain completed, status 255, used len 0\n/, explain(run));
  assert.match(run.stdout, /virtio-blk: read after hostile chains matches, status 0, used len 4097\n/, explain(run));
  assert.match(run.stderr, /bad request in chain 3: descriptor-range: descriptor 4 buffer 0x4000000000\+0x200 is outside guest RAM/, explain(run));
  assert.match(run.stderr, /bad request in chain 6: chain-too-long/, explain(run));
  assert.doesNotMatch(run.stderr, /needs reset/, explain(run));
});
