import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ApiModeUsageError,
  DEFAULT_API_SOCKET_PATH,
  DEFAULT_INSTANCE_ID,
  EXIT_ARG_PARSING,
  EXIT_BAD_CONFIGURATION,
  parseApiModeArgs,
} from "./api-mode-args.js";
import { DEFAULT_MAX_PAYLOAD_BYTES } from "../api/index.js";

function usageError(argv: string[], exitCode: number, pattern: RegExp): void {
  assert.throws(() => parseApiModeArgs(argv), (e: unknown) => {
    assert.ok(e instanceof ApiModeUsageError);
    assert.equal(e.exitCode, exitCode);
    assert.match(e.message, pattern);
    return true;
  });
}

test("Firecracker's defaults: the default socket, instance id and payload limit", () => {
  assert.deepEqual(parseApiModeArgs(["--config-file", "vm.json"]), {
    kind: "serve",
    apiSocketPath: DEFAULT_API_SOCKET_PATH,
    configFile: "vm.json",
    instanceId: DEFAULT_INSTANCE_ID,
    logger: {},
    metricsPath: undefined,
    maxPayloadBytes: DEFAULT_MAX_PAYLOAD_BYTES,
    mmdsSizeLimit: DEFAULT_MAX_PAYLOAD_BYTES,
  });
});

test("logger flags go through the Logger schema; --no-api drops the socket", () => {
  const args = parseApiModeArgs(["--config-file", "f", "--no-api", "--level", "warn", "--log-path", "/tmp/l", "--show-level", "--id", "vm-1"]);
  assert.equal(args.kind, "serve");
  if (args.kind !== "serve") return;
  assert.equal(args.apiSocketPath, undefined);
  assert.equal(args.instanceId, "vm-1");
  assert.deepEqual(args.logger, { log_path: "/tmp/l", level: "Warning", show_level: true });
});

test("Firecracker's rules: --no-api needs --config-file, ids and levels are checked", () => {
  usageError(["--no-api"], EXIT_ARG_PARSING, /--no-api requires --config-file/);
  usageError(["--no-api", "--config-file", "f", "--api-sock", "s"], EXIT_ARG_PARSING, /exclude each other/);
  usageError(["--id", "a_b"], EXIT_ARG_PARSING, /--id: "a_b"/);
  usageError(["--level", "loud"], EXIT_BAD_CONFIGURATION, /--level: must be one of/);
  usageError(["--http-api-max-payload-size", "0"], EXIT_ARG_PARSING, /positive whole number/);
  usageError(["--bogus"], EXIT_ARG_PARSING, /bogus/);
  assert.deepEqual(parseApiModeArgs(["--version"]), { kind: "version" });
});

test("--mmds-size-limit defaults to the payload limit, as in Firecracker; --metadata names the data file", () => {
  const plain = parseApiModeArgs([]);
  assert.equal(plain.kind === "serve" && plain.mmdsSizeLimit, DEFAULT_MAX_PAYLOAD_BYTES);
  const payload = parseApiModeArgs(["--http-api-max-payload-size", "1000"]);
  assert.equal(payload.kind === "serve" && payload.mmdsSizeLimit, 1000);
  const both = parseApiModeArgs(["--http-api-max-payload-size", "1000", "--mmds-size-limit", "200", "--metadata", "/m.json"]);
  assert.deepEqual(both.kind === "serve" && [both.mmdsSizeLimit, both.metadataFile], [200, "/m.json"]);
  usageError(["--mmds-size-limit", "-1"], EXIT_ARG_PARSING, /--mmds-size-limit/);
});
