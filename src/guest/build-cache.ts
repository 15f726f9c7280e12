import { mkdir, mkdtemp, readdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";

/** Scratch directories are named `.tmp-<entry>-<pid>-<random>` so a later run can tell whose they were. */
const SCRATCH_PREFIX = ".tmp-";

/**
 * Returns `<cacheDir>/<name>`, first building it if it does not exist. `build(outDir, scratchDir)` fills outDir
 * inside a private scratch directory; outDir is then renamed into place in one step, so a cache entry is either
 * complete or absent, and concurrent builders cannot corrupt it (the first rename wins, later ones are dropped).
 */
export async function cachedDirectory(
  cacheDir: string,
  name: string,
  build: (outDir: string, scratchDir: string) => Promise<void>,
): Promise<{ dir: string; built: boolean }> {
  const dir = join(cacheDir, name);
  if (await isDirectory(dir)) return { dir, built: false };

  await mkdir(cacheDir, { recursive: true });
  await removeAbandonedScratch(cacheDir);
  const scratch = await mkdtemp(join(cacheDir, `${SCRATCH_PREFIX}${name}-${process.pid}-`));
  try {
    const out = join(scratch, "out");
    await mkdir(out);
    await build(out, scratch);
    try {
      await rename(out, dir);
    } catch (err) {
      // Another builder renamed its complete copy into place first: use that one.
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== "ENOTEMPTY" && code !== "EEXIST") || !(await isDirectory(dir))) throw err;
    }
    return { dir, built: true };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** Deletes scratch directories left by builders that died (a kernel tree is over a gigabyte). */
async function removeAbandonedScratch(cacheDir: string): Promise<void> {
  for (const entry of await readdir(cacheDir)) {
    const pid = /^\.tmp-.+-(\d+)-[^-]+$/.exec(entry)?.[1];
    if (pid !== undefined && !isProcessAlive(Number(pid))) {
      await rm(join(cacheDir, entry), { recursive: true, force: true });
    }
  }
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0); // signal 0: existence check only (kill(2))
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

export async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}
