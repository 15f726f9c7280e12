import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { readFileBytes } from "./file-bytes.js";

const dir = mkdtempSync(path.join(tmpdir(), "petasan-file-bytes-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Mappings of exactly `bytes` in /proc/self/maps. */
function mappingsOfSize(bytes: number): number {
  return readFileSync("/proc/self/maps", "utf8").split("\n").filter((line) => {
    const m = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    return m !== null && BigInt(`0x${m[2]}`) - BigInt(`0x${m[1]}`) === BigInt(bytes);
  }).length;
}

test("a file's bytes are read whole, and release() hands their memory back at once", () => {
  const size = 3 * 1024 * 1024 + 4096 * 7; // an unusual size, so no other mapping has it
  const content = Buffer.alloc(size);
  for (let i = 0; i < size; i += 4096) content.writeUInt32LE(i, i);
  content[size - 1] = 0xab;
  const file = path.join(dir, "kernel");
  writeFileSync(file, content);

  const before = mappingsOfSize(size);
  const f = readFileBytes(file);
  assert.equal(f.bytes.length, size);
  assert.ok(Buffer.from(f.bytes.buffer, f.bytes.byteOffset, f.bytes.length).equals(content));
  assert.equal(mappingsOfSize(size), before + 1, "the bytes sit in a mapping of their own");
  f.release();
  assert.equal(mappingsOfSize(size), before, "released without waiting for a garbage collection");
  assert.equal(f.bytes.length, 0, "no view of the unmapped memory is handed out after release");
  f.release();
});

test("files whose size stat does not tell (procfs), empty files, and errors", () => {
  const status = readFileBytes("/proc/self/status");
  assert.match(Buffer.from(status.bytes).toString("latin1"), /^Name:/);
  status.release();
  const empty = path.join(dir, "empty");
  writeFileSync(empty, "");
  assert.equal(readFileBytes(empty).bytes.length, 0);
  assert.throws(() => readFileBytes(path.join(dir, "missing")), /ENOENT: no such file or directory, open '.*missing'/);
  assert.throws(() => readFileBytes(dir), /EISDIR/);
});
