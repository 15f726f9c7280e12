/**
 * Firecracker mode's MMDS flags as a user runs them: --metadata fills the data store before boot and
 * --mmds-size-limit bounds it (no VM is started, so no KVM is needed).
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { requestOverSocket } from "../../src/api/api-client.js";
import { startPetasan } from "./petasan-process.js";
import { faultOf, waitForApi } from "./api-process.js";

const workDir = mkdtempSync(path.join(tmpdir(), "petasan-mmds-api-"));
after(() => rmSync(workDir, { recursive: true, force: true }));

test("--metadata fills MMDS and --mmds-size-limit bounds it", async () => {
  const metadata = path.join(workDir, "metadata.json");
  writeFileSync(metadata, JSON.stringify({ b: "2", a: { c: "3" } }));
  const socketPath = path.join(workDir, "api.sock");
  const petasan = startPetasan(["--api-sock", socketPath, "--metadata", metadata, "--mmds-size-limit", "40"], 30_000);
  try {
    await waitForApi(socketPath, petasan);
    const got = await requestOverSocket(socketPath, "GET", "/mmds");
    assert.equal(got.text, '{"a":{"c":"3"},"b":"2"}');
    const over = await requestOverSocket(socketPath, "PATCH", "/mmds", { d: "x".repeat(40) });
    assert.equal(over.status, 413);
    assert.equal(faultOf(over), "MMDS limit exceeded error: The MMDS patch request doesn't fit.");
  } finally {
    petasan.child.kill("SIGTERM");
    await petasan.finished;
  }
  const tooBig = startPetasan(["--api-sock", path.join(workDir, "b.sock"), "--metadata", metadata, "--mmds-size-limit", "5"], 30_000);
  const r = await tooBig.finished;
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /--metadata .*metadata\.json: The MMDS patch request doesn't fit\./);
});
