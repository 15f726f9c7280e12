import { after, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { GuestSources } from "./guest-sources.js";
import { checkPrebuiltDir, choosePrebuiltKernel, parseSha256Sums, PREBUILT_DIR_ENV } from "./prebuilt.js";

const sources: GuestSources = {
  config: Buffer.from("CONFIG_PVH=y\n"),
  patch: Buffer.from("--- a/x\n"),
  initSource: Buffer.from("init"),
};
const vmlinuxBytes = Buffer.from("\x7fELF pretend kernel");
const sha256 = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

/** A prebuilt-guest directory laid out like shared/guest, optionally spoiled by `change`. */
async function prebuiltDir(parent: string, change: (dir: string) => Promise<void> = async () => {}): Promise<string> {
  const dir = join(parent, "shared", "guest");
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "vmlinux"), vmlinuxBytes);
  await writeFile(join(dir, "SHA256SUMS"), `${"0".repeat(64)}  bzImage\n${sha256(vmlinuxBytes)}  vmlinux\n`);
  await writeFile(join(dir, "linux-6.1-kvm-here.config"), sources.config);
  await writeFile(join(dir, "linux-6.1-kvm-here.patch"), sources.patch);
  await change(dir);
  return dir;
}

const made: string[] = [];
after(() => Promise.all(made.map((dir) => rm(dir, { recursive: true, force: true }))));
async function scratch(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "petasan-prebuilt-"));
  made.push(dir);
  return dir;
}

test("a directory whose vmlinux checksum and sources match is usable", async () => {
  const dir = await prebuiltDir(await scratch());
  assert.deepEqual(await checkPrebuiltDir(dir, sources), { usable: true, vmlinux: join(dir, "vmlinux") });
});

test("each mismatch is refused with its reason", async () => {
  const cases: [string, (dir: string) => Promise<void>, RegExp][] = [
    ["altered vmlinux", (d) => writeFile(join(d, "vmlinux"), "tampered"), /vmlinux has sha256 [0-9a-f]{64}, SHA256SUMS says/],
    ["no vmlinux", (d) => rm(join(d, "vmlinux")), /vmlinux is unreadable/],
    ["no SHA256SUMS", (d) => rm(join(d, "SHA256SUMS")), /has no readable SHA256SUMS/],
    ["vmlinux not listed", (d) => writeFile(join(d, "SHA256SUMS"), "garbage\n"), /lists no vmlinux/],
    ["other config", (d) => writeFile(join(d, "linux-6.1-kvm-here.config"), "CONFIG_PVH=n\n"), /kvm-here\.config differs/],
    ["no patch", (d) => rm(join(d, "linux-6.1-kvm-here.patch")), /kvm-here\.patch is missing/],
  ];
  for (const [what, spoil, reason] of cases) {
    const check = await checkPrebuiltDir(await prebuiltDir(await scratch(), spoil), sources);
    assert.equal(check.usable, false, what);
    assert.match((check as { reason: string }).reason, reason, what);
  }
});

test("the environment variable wins, and an unusable directory there is an error", async () => {
  const good = await prebuiltDir(await scratch());
  const noShared = await scratch();
  const progress: string[] = [];
  const chosen = await choosePrebuiltKernel(sources, { [PREBUILT_DIR_ENV]: good }, join(noShared, "repo"), (l) => progress.push(l));
  assert.equal(chosen, join(good, "vmlinux"));

  const bad = await prebuiltDir(await scratch(), (d) => writeFile(join(d, "vmlinux"), "tampered"));
  await assert.rejects(choosePrebuiltKernel(sources, { [PREBUILT_DIR_ENV]: bad }, join(noShared, "repo"), () => {}),
    { name: "GuestBuildError", message: new RegExp(`${PREBUILT_DIR_ENV}=.* is not usable: .*sha256`) });
});

test("shared/guest beside the repository is used when it matches, skipped with a note when not", async () => {
  const parent = await scratch();
  const shared = await prebuiltDir(parent);
  const repo = join(parent, "repo");
  assert.equal(await choosePrebuiltKernel(sources, {}, repo, () => {}), join(shared, "vmlinux"));

  const progress: string[] = [];
  const otherSources = { ...sources, patch: Buffer.from("a different patch") };
  assert.equal(await choosePrebuiltKernel(otherSources, {}, repo, (l) => progress.push(l)), undefined);
  assert.equal(progress.length, 1);
  assert.match(progress[0]!, /not using the prebuilt one in .*: .*kvm-here\.patch differs/);
});

test("without the variable or a shared directory there is no prebuilt kernel, silently", async () => {
  const progress: string[] = [];
  assert.equal(await choosePrebuiltKernel(sources, {}, join(await scratch(), "repo"), (l) => progress.push(l)), undefined);
  assert.deepEqual(progress, []);
});

test("SHA256SUMS lines parse in text and binary mode, other lines are ignored", () => {
  const a = "a".repeat(64);
  const b = "B".repeat(64);
  const sums = parseSha256Sums(`${a}  vmlinux\n${b} *bzImage\r\nnot a checksum line\n`);
  assert.deepEqual([...sums], [["vmlinux", a], ["bzImage", "b".repeat(64)]]);
});
