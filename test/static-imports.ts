/** The modules a source file imports statically (not `import type`), for tests about what a thread loads. */
import { readFileSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository's src/, from this file's compiled place (dist/test/). */
export const SRC = resolve(dirname(fileURLToPath(import.meta.url)), "../../src");

/** Specifiers as written in `file` (relative to src/). */
export function staticImports(file: string): string[] {
  const text = readFileSync(resolve(SRC, file), "utf8");
  return [...text.matchAll(/^import\s+(?!type\b)(?:[^;]*?from\s+)?"([^"]+)"/gm)].map((m) => m[1]);
}

/**
 * Every source file (relative to src/) that `file` loads statically, itself included: its imports and re-exports
 * (`export … from`), not type-only ones, followed through petasan's own files (specifiers starting with ".").
 */
export function staticClosure(file: string): Set<string> {
  const seen = new Set<string>();
  const visit = (rel: string) => {
    if (seen.has(rel)) return;
    seen.add(rel);
    const text = readFileSync(resolve(SRC, rel), "utf8");
    for (const m of text.matchAll(/^(?:import|export)\s+(?!type\b)(?:[^;]*?from\s+)?"(\.[^"]+)"/gm)) {
      visit(relative(SRC, resolve(SRC, dirname(rel), m[1].replace(/\.js$/, ".ts"))));
    }
  };
  visit(file);
  return seen;
}
