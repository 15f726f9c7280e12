import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { aptInstall, isPackageInstalled } from "./apt.js";
import { CpioWriter } from "./cpio.js";
import { INIT_CFLAGS, type GuestSources } from "./guest-sources.js";
import { runCommand } from "./run-command.js";

/** The file name of the archive inside its cache directory. */
export const INITRAMFS_FILE = "initramfs.cpio";
/** The init binary itself, kept beside the archive for root file systems made elsewhere (e.g. ext4 images). */
export const INIT_FILE = "init32";

/** /dev/console is character device 5:1 (Documentation/admin-guide/devices.txt); the kernel opens it for init. */
const CONSOLE_MAJOR = 5;
const CONSOLE_MINOR = 1;

/**
 * Compiles the 32-bit /init and packs it, with the directories and the console node it needs, into an
 * uncompressed cpio at `<outDir>/initramfs.cpio`.
 */
export async function buildInitramfs(sources: GuestSources, outDir: string, scratchDir: string,
  onProgress: (line: string) => void): Promise<void> {
  const source = join(scratchDir, "init32.c");
  const binary = join(scratchDir, "init");
  await writeFile(source, sources.initSource);
  const compile = (): Promise<void> => runCommand("gcc", [...INIT_CFLAGS, "-o", binary, source]);
  onProgress("initramfs: compiling the 32-bit /init with gcc -m32");
  try {
    await compile();
  } catch (err) {
    // Some distributions' gcc cannot target i386 without the multilib package; anything else is a real error.
    if (await isPackageInstalled("gcc-multilib")) throw err;
    onProgress("initramfs: gcc -m32 failed and gcc-multilib is missing: installing it");
    await aptInstall(["gcc-multilib"], onProgress);
    await compile();
  }

  const init = await readFile(binary);
  await writeFile(join(outDir, INIT_FILE), init, { mode: 0o755 });
  const archive = new CpioWriter()
    .addDirectory("dev")
    .addCharDevice("dev/console", CONSOLE_MAJOR, CONSOLE_MINOR)
    .addDirectory("proc")
    .addDirectory("sys")
    .addFile("init", init, 0o755)
    .toBuffer();
  const path = join(outDir, INITRAMFS_FILE);
  await writeFile(path, archive);
  onProgress(`initramfs: ${archive.length} bytes written`);
}
