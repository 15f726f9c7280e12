/**
 * The C baseline of the exit-rate benchmark (exit-rate-baseline.c): compiled with the machine's cc at
 * bench time into a cache keyed by the source's content, then run once per measurement.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rename } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { BenchError } from "./bench-error.js";
import { BENCH_DIR } from "./pio-loop-image.js";

const SOURCE_NAME = "exit-rate-baseline.c";
const CC_FLAGS = ["-O2", "-Wall", "-Wextra", "-Werror"];

/** A timed stretch of guest exits: `exits` round trips in `elapsedNs`, using `cpuNs` of the process's CPU time. */
export interface ExitTiming {
  exits: number;
  elapsedNs: number;
  cpuNs: number;
}

/** The C source sits in <repo>/bench, also when this runs from dist/bench. */
function sourcePath(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const found = [here, path.resolve(here, "../../bench")].map((d) => path.join(d, SOURCE_NAME)).find(existsSync);
  if (!found) throw new BenchError(`${SOURCE_NAME} not found beside ${here} or in the repository's bench/`);
  return found;
}

/** Compiles the baseline (or finds it in the cache); returns the executable's path. */
export async function buildCBaseline(): Promise<string> {
  const source = sourcePath();
  const key = createHash("sha256").update(CC_FLAGS.join(" ")).update(await readFile(source)).digest("hex").slice(0, 16);
  const binary = path.join(BENCH_DIR, `exit-rate-baseline-${key}`);
  if (existsSync(binary)) return binary;
  await mkdir(BENCH_DIR, { recursive: true });
  const partial = `${binary}.${process.pid}`;
  await execOrExplain("cc", [...CC_FLAGS, "-o", partial, source]);
  await rename(partial, binary);
  return binary;
}

/** Runs the baseline on `elf` and returns its timing of the OUT exits to `port`. */
export async function runCBaseline(binary: string, elf: string, memMib: number, port: number): Promise<ExitTiming> {
  const stdout = await execOrExplain(binary, [elf, String(memMib), `0x${port.toString(16)}`]);
  const m = /^exits=(\d+) elapsed_ns=(\d+) cpu_ns=(\d+)$/m.exec(stdout);
  if (!m) throw new BenchError(`the C baseline printed no "exits=N elapsed_ns=T cpu_ns=C" line:\n${stdout}`);
  return { exits: Number(m[1]), elapsedNs: Number(m[2]), cpuNs: Number(m[3]) };
}

function execOrExplain(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, (error, stdout, stderr) => {
      if (!error) return resolve(stdout);
      reject(new BenchError(`${command} ${args.join(" ")} failed (${error.code ?? error.message}):\n${stderr}`));
    });
  });
}
