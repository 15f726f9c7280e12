import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, openSync, closeSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger, type LoggerOptions } from "./logger.js";

function logged(opts: Omit<LoggerOptions, "fd">, lines: [Parameters<ReturnType<typeof createLogger>>[0], string][]): string[] {
  const path = join(mkdtempSync(join(tmpdir(), "petasan-log-")), "log");
  const fd = openSync(path, "a");
  const log = createLogger({ ...opts, fd });
  for (const [level, message] of lines) log(level, message);
  closeSync(fd);
  return readFileSync(path, "utf8").trim().split("\n").filter(Boolean).map((l) => l.replace(/^\S+ /, ""));
}

test("levels above the configured one are dropped", () => {
  assert.deepEqual(logged({ level: "Warning", origin: "vmm" }, [["Error", "e"], ["Warning", "w"], ["Info", "i"], ["Debug", "d"]]),
    ["[petasan:vmm:ERROR] e", "[petasan:vmm:WARNING] w"]);
});

test("show_level, show_log_origin and module shape the lines as Firecracker's settings do", () => {
  assert.deepEqual(logged({ level: "Info", origin: "vmm", showLevel: false, showOrigin: false }, [["Info", "m"]]), ["[petasan] m"]);
  assert.deepEqual(logged({ level: "Info", origin: "vmm", showLevel: true, showOrigin: false }, [["Info", "m"]]), ["[petasan:INFO] m"]);
  assert.deepEqual(logged({ level: "Info", origin: "devices", module: "dev" }, [["Info", "kept"]]), ["[petasan:devices:INFO] kept"]);
  assert.deepEqual(logged({ level: "Info", origin: "vmm", module: "dev" }, [["Info", "dropped"]]), []);
});
