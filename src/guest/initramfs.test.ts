import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { guestDir, loadGuestSources } from "./guest-sources.js";
import { buildInitramfs, INITRAMFS_FILE } from "./initramfs.js";

/** ELF header fields: e_ident[EI_CLASS] at 4 (1 = ELFCLASS32), e_machine at 18 (3 = EM_386); System V gABI. */
const EI_CLASS = 4;
const ELFCLASS32 = 1;
const E_MACHINE = 18;
const EM_386 = 3;

test("the initramfs holds the repository's /init compiled as a 32-bit i386 program", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "petasan-initramfs-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const progress: string[] = [];
  await buildInitramfs(await loadGuestSources(guestDir()), dir, dir, (l) => progress.push(l));

  const init = await readFile(join(dir, "init"));
  assert.deepEqual(init.subarray(0, 4), Buffer.from("\x7fELF", "latin1"));
  assert.equal(init[EI_CLASS], ELFCLASS32);
  assert.equal(init.readUInt16LE(E_MACHINE), EM_386);

  const archive = await readFile(join(dir, INITRAMFS_FILE));
  assert.ok(archive.includes(init), "the binary is stored verbatim");
  for (const name of ["dev\0", "dev/console\0", "proc\0", "sys\0", "init\0", "TRAILER!!!\0"]) {
    assert.ok(archive.includes(Buffer.from(name)), `entry ${JSON.stringify(name)}`);
  }
  assert.match(progress.at(-1)!, new RegExp(`initramfs: ${archive.length} bytes written`));
});
