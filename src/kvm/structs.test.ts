import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ALL_LAYOUTS } from "./structs.js";
import { IOCTL_NAMES } from "./ioctls.js";
import { KVM_CAP } from "./capabilities.js";

/** Compiles a C program that prints what the kernel headers say, one `name value` per line. */
function headerFacts(): Map<string, number> {
  const lines: string[] = [];
  for (const l of ALL_LAYOUTS) {
    lines.push(`P("${l.cType}", sizeof(${l.cType}));`);
    for (const field of Object.keys(l.offsets)) lines.push(`P("${l.cType}.${field}", offsetof(${l.cType}, ${field}));`);
  }
  for (const name of Object.keys(IOCTL_NAMES)) lines.push(`P("${name}", (unsigned long)${name});`);
  for (const name of Object.keys(KVM_CAP)) lines.push(`P("KVM_CAP_${name}", KVM_CAP_${name});`);
  const src = `#include <linux/kvm.h>\n#include <stddef.h>\n#include <stdio.h>\n#define P(n, v) printf("%s %lu\\n", n, (unsigned long)(v))\nint main(void) {\n${lines.join("\n")}\nreturn 0;\n}\n`;
  const dir = mkdtempSync(join(tmpdir(), "petasan-structs-"));
  try {
    writeFileSync(join(dir, "facts.c"), src);
    execFileSync("cc", ["-o", join(dir, "facts"), join(dir, "facts.c")], { stdio: ["ignore", "ignore", "pipe"] });
    const out = execFileSync(join(dir, "facts"), { encoding: "utf8" });
    return new Map(out.trim().split("\n").map((line) => {
      const at = line.lastIndexOf(" ");
      return [line.slice(0, at), Number(line.slice(at + 1))] as [string, number];
    }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("struct layouts and ioctl numbers match <linux/kvm.h>", () => {
  const facts = headerFacts();
  for (const l of ALL_LAYOUTS) {
    assert.equal(l.size, facts.get(l.cType), `sizeof(${l.cType})`);
    for (const [field, off] of Object.entries(l.offsets)) {
      assert.equal(off, facts.get(`${l.cType}.${field}`), `offsetof(${l.cType}, ${field})`);
    }
  }
  for (const [name, value] of Object.entries(IOCTL_NAMES)) assert.equal(value, facts.get(name), name);
  for (const [name, value] of Object.entries(KVM_CAP)) assert.equal(value, facts.get(`KVM_CAP_${name}`), `KVM_CAP_${name}`);
});
