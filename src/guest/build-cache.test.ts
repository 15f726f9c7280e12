import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cachedDirectory } from "./build-cache.js";

const made: string[] = [];
after(() => Promise.all(made.map((dir) => rm(dir, { recursive: true, force: true }))));
async function newCacheDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "petasan-cache-"));
  made.push(dir);
  return dir;
}

test("an entry is built once, then served from the cache", async () => {
  const cache = await newCacheDir();
  let builds = 0;
  const build = async (out: string): Promise<void> => {
    builds++;
    await writeFile(join(out, "artifact"), "v1");
  };
  const first = await cachedDirectory(cache, "thing-1", build);
  const second = await cachedDirectory(cache, "thing-1", build);
  assert.deepEqual(first, { dir: join(cache, "thing-1"), built: true });
  assert.deepEqual(second, { dir: join(cache, "thing-1"), built: false });
  assert.equal(builds, 1);
  assert.equal(await readFile(join(first.dir, "artifact"), "utf8"), "v1");
  assert.deepEqual(await readdir(cache), ["thing-1"], "no scratch left behind");
});

test("a failed build leaves neither an entry nor scratch", async () => {
  const cache = await newCacheDir();
  await assert.rejects(cachedDirectory(cache, "broken", async (out) => {
    await writeFile(join(out, "half"), "x");
    throw new Error("compiler exploded");
  }), /compiler exploded/);
  assert.deepEqual(await readdir(cache), []);
});

test("concurrent builders of one entry both get the complete entry", async () => {
  const cache = await newCacheDir();
  const build = (content: string) => async (out: string): Promise<void> => {
    await writeFile(join(out, "a"), content);
    await new Promise((r) => setImmediate(r)); // let the other builder interleave
    await writeFile(join(out, "b"), content);
  };
  const [x, y] = await Promise.all([cachedDirectory(cache, "e", build("x")), cachedDirectory(cache, "e", build("y"))]);
  assert.equal(x.dir, y.dir);
  const a = await readFile(join(x.dir, "a"), "utf8");
  assert.equal(await readFile(join(x.dir, "b"), "utf8"), a, "files come from one builder");
  assert.deepEqual(await readdir(cache), ["e"]);
});

test("scratch left by a dead builder is removed, a live one's is kept", async () => {
  const cache = await newCacheDir();
  const deadPid = spawnSync("true").pid;
  const dead = `.tmp-kernel-abc-${deadPid}-Xy12Zq`;
  const live = `.tmp-kernel-abc-${process.pid}-Ab34Cd`;
  await mkdir(join(cache, dead, "linux-source-6.1"), { recursive: true });
  await mkdir(join(cache, live));
  await cachedDirectory(cache, "other", async () => {});
  assert.deepEqual((await readdir(cache)).sort(), [live, "other"].sort());
});
