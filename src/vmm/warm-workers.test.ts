/**
 * A warm worker loads what its kind of thread imports, and only that: all of its entry's modules (so starting the
 * job loads nothing more), and for a vCPU thread nothing else (a device thread's models would cost it ~1.7 MiB).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { posix } from "node:path";
import { PRELOAD } from "./warm-workers.js";
import { staticImports } from "../../test/static-imports.js";

/** Paths relative to src/ of the modules `file` (relative to src/) imports, node: builtins left out. */
function importedModules(file: string): Set<string> {
  return new Set(staticImports(file).filter((m) => !m.startsWith("node:") && m.startsWith(".")).map((m) => posix.join(posix.dirname(file), m)));
}
const preloaded = (kind: keyof typeof PRELOAD) => new Set(PRELOAD[kind].map((m) => posix.join("vmm", m)));

test("a warm vCPU thread loads exactly what the vCPU thread imports", () => {
  assert.deepEqual([...preloaded("vcpu")].sort(), [...importedModules("vmm/vcpu/worker.ts")].map((m) => m.replace(/\.ts$/, ".js")).sort());
});

test("a warm device thread loads everything the device thread imports", () => {
  const have = preloaded("devices");
  const missing = [...importedModules("vmm/device-thread/worker.ts")].map((m) => m.replace(/\.ts$/, ".js")).filter((m) => !have.has(m));
  assert.deepEqual(missing, []);
});
