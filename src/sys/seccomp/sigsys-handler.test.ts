import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { SIGSYS_HANDLER_CODE } from "./sigsys-handler.js";

/** This test runs from dist/src/sys/seccomp; the assembly source stays in src/. */
const SOURCE = fileURLToPath(new URL("../../../../src/sys/seccomp/sigsys-handler.S", import.meta.url));

function binutils(): string | false {
  try {
    execFileSync("as", ["--version"], { stdio: "ignore" });
    execFileSync("objcopy", ["--version"], { stdio: "ignore" });
    return false;
  } catch {
    return "binutils (as, objcopy) is not installed";
  }
}

test("the SIGSYS handler's bytes are sigsys-handler.S assembled", { skip: binutils() }, () => {
  const dir = mkdtempSync(join(tmpdir(), "petasan-sigsys-"));
  try {
    execFileSync("as", ["--64", "-o", join(dir, "h.o"), SOURCE]);
    execFileSync("objcopy", ["-O", "binary", "-j", ".text", join(dir, "h.o"), join(dir, "h.bin")]);
    assert.deepEqual(readFileSync(join(dir, "h.bin")), SIGSYS_HANDLER_CODE);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the handler's message is Firecracker's, with exit code 148", () => {
  const text = SIGSYS_HANDLER_CODE.toString("latin1");
  assert.match(text, /petasan: seccomp: Shutting down VM after intercepting a bad syscall \(/);
  assert.match(text, /; exit code 148\n/);
});
