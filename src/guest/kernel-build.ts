import { access, copyFile, writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { aptInstall } from "./apt.js";
import { GuestBuildError } from "./build-error.js";
import type { GuestSources } from "./guest-sources.js";
import { commandOutput, isOnPath, runCommand } from "./run-command.js";

/** Debian's linux-source-6.1 package installs the tree as this tarball, unpacking to linux-source-6.1/. */
const SOURCE_PACKAGE = "linux-source-6.1";
const SOURCE_TARBALL = "/usr/src/linux-source-6.1.tar.xz";
const SOURCE_TREE = "linux-source-6.1";

/** Files of a cached kernel build. */
export const VMLINUX_FILE = "vmlinux";
export const BZIMAGE_FILE = "bzImage";

/** Build tools and the Debian package that provides each (the config compresses bzImage with LZ4). */
const TOOL_PACKAGES: readonly (readonly [tool: string, pkg: string])[] = [
  ["make", "make"], ["gcc", "gcc"], ["flex", "flex"], ["bison", "bison"], ["bc", "bc"], ["lz4", "lz4"],
  ["xz", "xz-utils"], ["patch", "patch"], ["strip", "binutils"], ["readelf", "binutils"],
];
/** objtool (CONFIG_OBJTOOL) compiles against libelf; this header marks libelf-dev as present. */
const LIBELF_HEADER = "/usr/include/gelf.h";

/** One progress line per this many kbuild steps: this config builds in about 1500 (measured). */
const STEPS_PER_REPORT = 50;

/**
 * Builds the guest kernel from Debian's linux-source 6.1 with our patch and config, leaving `vmlinux` (stripped,
 * PVH note kept) and `bzImage` in outDir. The source tree is unpacked in scratchDir.
 */
export async function buildKernel(sources: GuestSources, outDir: string, scratchDir: string,
  onProgress: (line: string) => void): Promise<void> {
  const started = Date.now();
  await installBuildDependencies(onProgress);

  onProgress(`kernel: unpacking ${SOURCE_TARBALL}`);
  await runCommand("tar", ["-xf", SOURCE_TARBALL, "-C", scratchDir]);
  const tree = join(scratchDir, SOURCE_TREE);

  onProgress("kernel: applying the petasan patch");
  const patchFile = join(scratchDir, "petasan.patch");
  await writeFile(patchFile, sources.patch);
  await runCommand("patch", ["-p1", "--batch", "--forward", "-i", patchFile], { cwd: tree });

  await writeFile(join(tree, ".config"), sources.config);
  const forward = (line: string): void => onProgress(`  ${line}`);
  await runCommand("make", ["olddefconfig"], { cwd: tree, onStdoutLine: forward });

  const jobs = availableParallelism();
  onProgress(`kernel: make -j${jobs} vmlinux bzImage (a few minutes on two cores)`);
  const progress = new KbuildProgress(onProgress);
  await runCommand("make", [`-j${jobs}`, "vmlinux", "bzImage"], {
    cwd: tree,
    onStdoutLine: (line) => progress.line(line.replaceAll(`${tree}/`, "")), // paths relative to the tree
    onStderrLine: (line) => progress.diagnostic(line),
  });
  progress.finish();

  const vmlinux = join(outDir, VMLINUX_FILE);
  // --strip-all drops symbols and debug sections only; the allocated .notes section holding the PVH entry stays.
  await runCommand("strip", ["--strip-all", "-o", vmlinux, join(tree, "vmlinux")]);
  await checkPvhNote(vmlinux);
  await copyFile(join(tree, "arch", "x86", "boot", "bzImage"), join(outDir, BZIMAGE_FILE));
  onProgress(`kernel: built in ${Math.round((Date.now() - started) / 1000)} s`);
}

async function installBuildDependencies(onProgress: (line: string) => void): Promise<void> {
  const missing = new Set<string>();
  if (!(await exists(SOURCE_TARBALL))) missing.add(SOURCE_PACKAGE);
  if (!(await exists(LIBELF_HEADER))) missing.add("libelf-dev");
  for (const [tool, pkg] of TOOL_PACKAGES) {
    if (!(await isOnPath(tool))) missing.add(pkg);
  }
  if (missing.size === 0) return;
  onProgress(`kernel: installing build dependencies: ${[...missing].join(" ")}`);
  await aptInstall([...missing], onProgress);
}

/**
 * The VMM enters the kernel through the PVH entry point, published as the Xen ELF note
 * XEN_ELFNOTE_PHYS32_ENTRY (type 18, include/xen/interface/elfnote.h); refuse a vmlinux without it.
 */
async function checkPvhNote(vmlinux: string): Promise<void> {
  const notes = await commandOutput("readelf", ["-n", vmlinux]);
  // readelf prints "Xen  <size>  <type name or 'Unknown note type: (0x00000012)'>" per Xen note.
  const hasPvhEntry = notes.some((line) => /^\s*Xen\s/.test(line) && /PHYS32_ENTRY|\(0x00000012\)/.test(line));
  if (!hasPvhEntry) throw new GuestBuildError(`${vmlinux} has no Xen PHYS32_ENTRY (PVH) note: is CONFIG_PVH set?`);
}

/**
 * Condenses kbuild's quiet output ("  CC      kernel/fork.o", one line per step) into a line per
 * STEPS_PER_REPORT steps, passes other stdout lines through, and counts compiler warnings on stderr.
 */
export class KbuildProgress {
  private steps = 0;
  private warnings = 0;

  constructor(private readonly report: (line: string) => void, private readonly every = STEPS_PER_REPORT) {}

  line(line: string): void {
    // kbuild's quiet_cmd_* format: two spaces, an upper-case tag padded to 8 columns, the target.
    const step = /^ {2}[A-Z][A-Z0-9_]* +(\S.*)$/.exec(line);
    if (!step) {
      if (line.trim() !== "") this.report(`  ${line}`);
      return;
    }
    this.steps++;
    if (this.steps % this.every === 0) this.report(`kernel: ${this.steps} build steps done (${line.trim().replace(/\s+/, " ")})`);
  }

  diagnostic(line: string): void {
    if (/\bwarning:/.test(line)) this.warnings++;
  }

  finish(): void {
    this.report(`kernel: ${this.steps} build steps done, ${this.warnings} compiler warnings`);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
