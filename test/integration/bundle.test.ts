/**
 * The bundle (scripts/bundle.mjs, `npm run build`): bin/petasan.js runs it, its threads are the bundled ones, the
 * paths petasan finds from its own files still resolve in it, and bin/petasan.js falls back to tsc's output when
 * the bundle is missing or older.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { buildTestGuest } from "../guests/build.js";
import { kvmSkipReason } from "./kvm-available.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const BIN = path.join(ROOT, "bin/petasan.js");
const BUNDLE = pathToFileURL(path.join(ROOT, "dist/bundle/")).href;
const TRACE_WORKERS = fileURLToPath(new URL("./trace-workers.js", import.meta.url));
const RUN_TIMEOUT_MS = 60_000;
const run = promisify(execFile);

test("bin/petasan.js boots a guest on the bundle's threads", { skip: kvmSkipReason() }, async () => {
  const guest = await buildTestGuest("long64");
  const { stdout, stderr } = await run(process.execPath, ["--import", TRACE_WORKERS, BIN, "run", "--kernel", guest, "--serial", "stdio"], { timeout: RUN_TIMEOUT_MS });
  assert.match(stdout, /long64: hello from 64-bit\n/, stderr);
  const workers = [...stderr.matchAll(/^worker: (.*)$/gm)].map((m) => m[1]).sort();
  assert.deepEqual(workers, [`${BUNDLE}device-thread/worker.js`, `${BUNDLE}vcpu/worker.js`], `run \`npm run build\` first if the bundle is missing\n${stderr}`);
});

test("the bundle finds files beside petasan's compiled modules (package.json for --version)", async () => {
  const { stdout } = await run(process.execPath, [BIN, "--version"], { timeout: RUN_TIMEOUT_MS });
  const { version } = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string };
  assert.match(stdout, new RegExp(`^petasan v${version.replaceAll(".", "\\.")}$`, "m"));
});

test("bin/petasan.js runs the bundle only when it is at least as new as tsc's output", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "petasan-bin-"));
  try {
    mkdirSync(path.join(dir, "bin"));
    copyFileSync(BIN, path.join(dir, "bin/petasan.js"));
    writeFileSync(path.join(dir, "package.json"), JSON.stringify({ type: "module" }));
    const place = (file: string, says: string, mtimeS: number) => {
      mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      writeFileSync(path.join(dir, file), `console.log(${JSON.stringify(says)});\n`);
      utimesSync(path.join(dir, file), mtimeS, mtimeS);
    };
    const says = async () => (await run(process.execPath, [path.join(dir, "bin/petasan.js")])).stdout.trim();
    place("dist/src/cli/main.js", "compiled", 1_000_000);
    assert.equal(await says(), "compiled", "no bundle");
    place("dist/bundle/petasan.js", "bundle", 1_000_000);
    assert.equal(await says(), "bundle", "bundle as new as tsc's output");
    utimesSync(path.join(dir, "dist/src/cli/main.js"), 2_000_000, 2_000_000);
    assert.equal(await says(), "compiled", "tsc ran after the bundle was made");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
