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
    startTimes: { startTimeUs: undefined, startTimeCpuUs: undefined, parentCpuTimeUs: undefined },
    seccomp: { kind: "default" },
    warnings: [],
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

test("firecracker-go-sdk's command line: --api-sock P --id <uuid> --no-seccomp turns seccomp off; --seccomp-filter names a file; the default is on", () => {
  const args = parseApiModeArgs(["--api-sock", "/tmp/fc.sock", "--id", "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "--no-seccomp"]);
  assert.equal(args.kind, "serve");
  if (args.kind !== "serve") return;
  assert.equal(args.apiSocketPath, "/tmp/fc.sock");
  assert.equal(args.instanceId, "6ba7b810-9dad-11d1-80b4-00c04fd430c8");
  assert.deepEqual(args.warnings, []);
  assert.deepEqual(args.seccomp, { kind: "off" });
  const filtered = parseApiModeArgs(["--api-sock", "/tmp/fc.sock", "--seccomp-filter", "/etc/filter.json"]);
  assert.ok(filtered.kind === "serve");
  assert.deepEqual(filtered.seccomp, { kind: "file", path: "/etc/filter.json" });
  assert.deepEqual(filtered.warnings, []);
  const plain = parseApiModeArgs(["--api-sock", "/tmp/fc.sock"]);
  assert.ok(plain.kind === "serve" && plain.seccomp.kind === "default");
});

test("every flag of Firecracker's main.rs is known: honoured, warned about, or refused as unsupported", () => {
  const args = parseApiModeArgs([
    "--api-sock", "s", "--id", "a", "--seccomp-filter", "f", "--start-time-us", "10", "--start-time-cpu-us", "20",
    "--parent-cpu-time-us", "30", "--config-file", "c", "--log-path", "l", "--level", "Debug", "--module", "m",
    "--show-level", "--show-log-origin", "--metrics-path", "mp", "--boot-timer", "--http-api-max-payload-size", "100",
    "--mmds-size-limit", "200", "--enable-pci",
  ]);
  assert.equal(args.kind, "serve");
  if (args.kind !== "serve") return;
  assert.deepEqual(args.startTimes, { startTimeUs: 10, startTimeCpuUs: 20, parentCpuTimeUs: 30 });
  assert.equal(args.maxPayloadBytes, 100);
  assert.equal(args.warnings.length, 2, args.warnings.join("\n"));
  assert.equal(args.mmdsSizeLimit, 200);
  for (const warning of args.warnings) assert.doesNotMatch(warning, /\n/);
  assert.deepEqual(parseApiModeArgs(["--help"]), { kind: "help" });
  assert.deepEqual(parseApiModeArgs(["--api-sock", "s", "--version"]), { kind: "version" });
  for (const argv of [["--snapshot-version"], ["--describe-snapshot", "vm.snap"]]) {
    const refused = parseApiModeArgs(argv);
    assert.ok(refused.kind === "unsupported" && /does not support describing snapshot versions yet/.test(refused.message));
  }
});

test("Firecracker's ArgParser rules: --no-seccomp excludes --seccomp-filter, no flag twice, whole numbers", () => {
  usageError(["--no-seccomp", "--seccomp-filter", "f"], EXIT_ARG_PARSING, /^Argument 'no-seccomp' cannot be used together with argument 'seccomp-filter'\.$/);
  usageError(["--id", "a", "--id", "b"], EXIT_ARG_PARSING, /^The argument 'id' was provided more than once\.$/);
  usageError(["--start-time-us", "soon"], EXIT_ARG_PARSING, /--start-time-us: "soon" is not a whole number/);
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
