import { test } from "node:test";
import assert from "node:assert/strict";
import { KbuildProgress } from "./kernel-build.js";

test("kbuild step lines are summarised, other output passes through, warnings are counted", () => {
  const reports: string[] = [];
  const progress = new KbuildProgress((line) => reports.push(line), 2);
  progress.line("  SYNC    include/config/auto.conf");
  progress.line("  CC      init/main.o");
  progress.line("  CC      kernel/fork.o");
  progress.line("");
  progress.line("Kernel: arch/x86/boot/bzImage is ready  (#1)");
  progress.diagnostic("kernel/fork.c:12:3: warning: unused variable 'x'");
  progress.diagnostic("   12 |   int x;");
  progress.finish();
  assert.deepEqual(reports, [
    "kernel: 2 build steps done (CC init/main.o)",
    "  Kernel: arch/x86/boot/bzImage is ready  (#1)",
    "kernel: 3 build steps done, 1 compiler warnings",
  ]);
});
