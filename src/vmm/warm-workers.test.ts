/**
 * A warm worker is only warm if it has loaded what its job's entry module imports: a module left out is loaded,
 * compiled and run when the job arrives, on the path of InstanceStart and /snapshot/load (a restore waited ~10 ms
 * for the device thread's MMDS and user-device modules that way). Checked on the emitted JavaScript, where
 * type-only imports are gone.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

/** The modules a JavaScript file imports by relative path (static imports only), as absolute file URLs. */
function relativeImports(file: URL): Set<string> {
  const text = readFileSync(file, "utf8");
  const specs = [...text.matchAll(/^\s*import\s+(?:[^'"]*?\s+from\s+)?["'](\.{1,2}\/[^"']+)["']/gm)].map((m) => m[1]);
  return new Set(specs.map((s) => new URL(s, file).href));
}

for (const entry of ["./vcpu/worker.js", "./device-thread/worker.js"]) {
  test(`the warm worker loads every module ${entry} imports`, () => {
    const warm = relativeImports(new URL("./warm-worker.js", import.meta.url));
    const needed = relativeImports(new URL(entry, import.meta.url));
    assert.ok(needed.size > 5, `found ${needed.size} imports in ${entry}`);
    const missing = [...needed].filter((m) => !warm.has(m)).map((m) => m.slice(m.indexOf("/src/") + 1));
    assert.deepEqual(missing, [], `warm-worker.ts does not import what ${entry} needs`);
  });
}
