/**
 * Builds the tiny test guests (kvm-unit-tests style) at test time with the machine's gcc and ld, into
 * a cache directory keyed by the sources' content, and returns the ELF's path.
 *
 * The contract with petasan's ELF loader that these guests rely on:
 * - ELF32 (EM_386), entry below 1 MiB, no PVH note: started in 16-bit real mode with
 *   CS.selector = (e_entry >> 4) & 0xf000, CS.base = selector << 4, IP = e_entry - CS.base, the other
 *   segment registers equal to CS, interrupts off. Real-mode guests link at 0x10000 (real16.ld).
 * - ELF64 (EM_X86_64), no PVH note: started in long mode at e_entry with the first 4 GiB identity-mapped,
 *   flat segments, rsi = the boot_params zero page, interrupts off and no promised stack. PT_LOAD
 *   segments are loaded at p_paddr; these guests link at 1 MiB (long64.ld).
 * - COM1 is a 16550A at 0x3f8 on IRQ 4; writing 0xfe to the i8042 at 0x64 ends the VMM with exit code 0.
 *
 * This machine's KVM emulates guest ring-0 code (see KVM-HERE.md), hence the flags: no SSE/x87 code,
 * no CET end-branch hints, no red zone (the echo guest takes interrupts on the C stack).
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export class TestGuestBuildError extends Error {
  override readonly name = "TestGuestBuildError";
}

type GuestMode = "real16" | "long64";

interface GuestRecipe {
  mode: GuestMode;
  /** Files compiled and linked, in link order (the entry's file first). */
  sources: readonly string[];
  /** Files the sources include: part of the cache key only. */
  headers?: readonly string[];
}

const GUESTS = {
  realmode: { mode: "real16", sources: ["realmode.S"], headers: ["uart-puts.inc"] },
  long64: { mode: "long64", sources: ["start64.S", "long64.c"], headers: ["guest64.h"] },
  echo: { mode: "long64", sources: ["start64.S", "echo.c"], headers: ["guest64.h", "interrupts.h"] },
  triplefault: { mode: "long64", sources: ["triplefault.S"], headers: ["uart-puts.inc"] },
  unmapped: { mode: "long64", sources: ["start64.S", "unmapped.c"], headers: ["guest64.h"] },
  "pio-loop": { mode: "long64", sources: ["pio-loop.S"], headers: ["uart-puts.inc", "ring3.inc"] },
  counter: { mode: "long64", sources: ["counter.S"], headers: ["ring3.inc"] },
  "counter-fill": { mode: "long64", sources: ["counter-fill.S"], headers: ["counter.S", "ring3.inc"] },
  "virtio-blk": { mode: "long64", sources: ["start64.S", "virtio-blk.c"], headers: ["guest64.h", "virtio-blk.h"] },
  "virtio-net": { mode: "long64", sources: ["start64.S", "virtio-net.c"], headers: ["guest64.h", "virtio-blk.h", "interrupts.h"] },
  smp: { mode: "long64", sources: ["start64.S", "smp.c", "smp-trampoline.S"], headers: ["guest64.h", "smp.h"] },
  "user-device": { mode: "long64", sources: ["start64.S", "user-device.c"], headers: ["guest64.h", "interrupts.h"] },
} as const satisfies Record<string, GuestRecipe>;

export type TestGuestName = keyof typeof GUESTS;
export const TEST_GUEST_NAMES = Object.keys(GUESTS) as TestGuestName[];

const COMPILE_FLAGS: Record<GuestMode, readonly string[]> = {
  real16: ["-m32", "-ffreestanding", "-nostdlib", "-fno-pic", "-fno-pie"],
  long64: [
    "-m64", "-O2", "-std=gnu11", "-Wall", "-Werror",
    "-ffreestanding", "-fno-builtin", "-nostdlib", "-static", "-fno-pic", "-fno-pie",
    "-mgeneral-regs-only", "-mno-sse", "-mno-mmx", "-mno-80387", "-mno-red-zone",
    "-fno-stack-protector", "-fno-asynchronous-unwind-tables", "-fcf-protection=none",
  ],
};

const LINK: Record<GuestMode, { emulation: string; script: string }> = {
  real16: { emulation: "elf_i386", script: "real16.ld" },
  long64: { emulation: "elf_x86_64", script: "long64.ld" },
};

/** The guest sources live beside this file's TypeScript source: <repo>/test/guests, also when run from dist/. */
export const TEST_GUEST_SOURCE_DIR = locateSourceDir();

function locateSourceDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [here, path.resolve(here, "../../../test/guests")];
  const found = candidates.find((dir) => existsSync(path.join(dir, "long64.ld")));
  if (!found) throw new TestGuestBuildError(`test guest sources not found in ${candidates.join(" or ")}`);
  return found;
}

const CACHE_DIR = path.join(tmpdir(), "petasan-test-guests");

/** Builds (or finds in the cache) test guest `name` and returns the path of its ELF. */
export async function buildTestGuest(name: string): Promise<string> {
  if (!Object.hasOwn(GUESTS, name)) {
    throw new TestGuestBuildError(`unknown test guest "${name}"; known: ${TEST_GUEST_NAMES.join(", ")}`);
  }
  const recipe: GuestRecipe = GUESTS[name as TestGuestName];
  const link = LINK[recipe.mode];
  const inputs = [...recipe.sources, ...(recipe.headers ?? []), link.script];
  const key = createHash("sha256");
  key.update(COMPILE_FLAGS[recipe.mode].join(" "));
  for (const file of inputs) key.update(file).update(await readSource(file));
  const elfPath = path.join(CACHE_DIR, `${name}-${key.digest("hex").slice(0, 16)}.elf`);
  if (existsSync(elfPath)) return elfPath;

  await mkdir(CACHE_DIR, { recursive: true });
  const workDir = await mkdtemp(path.join(CACHE_DIR, `${name}-build-`));
  try {
    const objects: string[] = [];
    for (const source of recipe.sources) {
      const object = path.join(workDir, `${path.basename(source)}.o`);
      await run("gcc", [...COMPILE_FLAGS[recipe.mode], "-c", path.join(TEST_GUEST_SOURCE_DIR, source), "-o", object]);
      objects.push(object);
    }
    const linked = path.join(workDir, `${name}.elf`);
    await run("ld", [
      "-m", link.emulation, "-static", "-nostdlib", "--build-id=none", "-z", "noexecstack",
      "-z", "max-page-size=0x1000", "-T", path.join(TEST_GUEST_SOURCE_DIR, link.script), "-o", linked, ...objects,
    ]);
    // Parallel test runs may build the same guest; rename is atomic, so either copy is whole.
    await rename(linked, elfPath);
    return elfPath;
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

async function readSource(file: string): Promise<Buffer> {
  try {
    return await readFile(path.join(TEST_GUEST_SOURCE_DIR, file));
  } catch (cause) {
    throw new TestGuestBuildError(`cannot read test guest source ${file} in ${TEST_GUEST_SOURCE_DIR}`, { cause });
  }
}

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd: TEST_GUEST_SOURCE_DIR }, (error, _stdout, stderr) => {
      if (!error) return resolve();
      const status = typeof error.code === "number" ? `exit code ${error.code}` : String(error.code ?? error.message);
      reject(new TestGuestBuildError(`${command} ${args.join(" ")} failed (${status}):\n${stderr}`));
    });
  });
}
