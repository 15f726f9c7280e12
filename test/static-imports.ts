/** The modules a source file imports statically (not `import type`), for tests about what a thread loads. */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository's src/, from this file's compiled place (dist/test/). */
export const SRC = resolve(dirname(fileURLToPath(import.meta.url)), "../../src");

/** Specifiers as written in `file` (relative to src/). */
export function staticImports(file: string): string[] {
  const text = readFileSync(resolve(SRC, file), "utf8");
  return [...text.matchAll(/^import\s+(?!type\b)(?:[^;]*?from\s+)?"([^"]+)"/gm)].map((m) => m[1]);
}
