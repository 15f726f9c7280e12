/**
 * Builds bench/api-boot-guest.S (the api-boot benchmark's guest) with the machine's gcc and ld, linked
 * like the 64-bit test guests (test/guests/long64.ld), into a directory the caller owns.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { TEST_GUEST_SOURCE_DIR } from "../test/guests/build.js";
import { BenchError } from "./bench-error.js";

const SOURCE_NAME = "api-boot-guest.S";

/** What the guest prints: its marker byte first thing, then a line once it is about to reset. */
export const API_BOOT_GUEST_OUTPUT = { firstByte: "!", complete: "!\napi-boot-guest: done\n" } as const;

/** The source sits beside this file's TypeScript source, <repo>/bench, also when run from dist/bench. */
function locateSource(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [here, path.resolve(here, "../../bench")].map((dir) => path.join(dir, SOURCE_NAME));
  const found = candidates.find((file) => existsSync(file));
  if (!found) throw new BenchError(`${SOURCE_NAME} not found at ${candidates.join(" or ")}`);
  return found;
}

/** Assembles and links the guest into `outDir`; returns the ELF's path. */
export async function buildApiBootGuest(outDir: string): Promise<string> {
  const object = path.join(outDir, "api-boot-guest.o");
  const elf = path.join(outDir, "api-boot-guest.elf");
  await run("gcc", ["-m64", "-c", locateSource(), "-o", object]);
  await run("ld", [
    "-m", "elf_x86_64", "-static", "-nostdlib", "--build-id=none", "-z", "noexecstack", "-z", "max-page-size=0x1000",
    "-T", path.join(TEST_GUEST_SOURCE_DIR, "long64.ld"), "-o", elf, object,
  ]);
  return elf;
}

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(command, args, (error, _stdout, stderr) => {
      if (error) reject(new BenchError(`${command} ${args.join(" ")} failed: ${stderr || error.message}`));
      else resolve();
    });
  });
}
