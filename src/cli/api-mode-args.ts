/**
 * The Firecracker-compatible command line (Firecracker src/firecracker/src/main.rs): every flag of the
 * Firecracker release whose API petasan implements, with the same names, defaults and rules, e.g. --no-api
 * requires --config-file, --no-seccomp and --seccomp-filter exclude each other, a flag given twice is an
 * error, and --api-sock defaults to a fixed path (Firecracker's /run/firecracker.socket, here
 * /run/petasan.socket). Flags for features petasan does not have yet are accepted with a one-line warning
 * when ignoring them changes nothing the user can observe (the boot timer, PCI) and refused when it would (the
 * snapshot flags). Seccomp is Firecracker's: on by default, --no-seccomp turns it off, --seccomp-filter FILE
 * replaces the lists (petasan's own file format).
 */
import { parseArgs } from "node:util";
import { ConfigError, loggerSchema, type LoggerConfig } from "../config/index.js";
import { DEFAULT_MAX_PAYLOAD_BYTES } from "../api/index.js";
import { SECCOMP_FLAGS_EXCLUSIVE, seccompChoice, type SeccompChoice } from "./seccomp-choice.js";

export const DEFAULT_API_SOCKET_PATH = "/run/petasan.socket";
/** Firecracker's logger DEFAULT_INSTANCE_ID. */
export const DEFAULT_INSTANCE_ID = "anonymous-instance";

/** Firecracker's FcExitCode (vmm/src/lib.rs) for the failures of this mode. */
export const EXIT_GENERIC_ERROR = 1;
export const EXIT_BAD_CONFIGURATION = 152;
export const EXIT_ARG_PARSING = 153;

export const API_MODE_USAGE = `usage: petasan [--api-sock PATH] [--config-file FILE [--no-api]] [--id ID]
               [--level LEVEL] [--log-path FILE] [--show-level] [--show-log-origin] [--module PREFIX]
               [--metrics-path FILE] [--http-api-max-payload-size BYTES]
               [--start-time-us US] [--start-time-cpu-us US] [--parent-cpu-time-us US] [--version]
               [--metadata FILE] [--mmds-size-limit BYTES]
Firecracker-compatible mode: serves the Firecracker API on a Unix socket and/or boots from a config file.
  --api-sock PATH        the API socket (default ${DEFAULT_API_SOCKET_PATH})
  --config-file FILE     boot at once from this JSON configuration (Firecracker's format)
  --no-api               serve no API (needs --config-file)
  --id ID                the microVM id: 1-64 letters, digits or '-' (default ${DEFAULT_INSTANCE_ID})
  --level LEVEL          log level: Error, Warning, Info (default), Debug, Trace or Off
  --log-path FILE        the log file or FIFO (default: stderr)
  --show-level, --show-log-origin, --module PREFIX   as the logger API fields
  --metrics-path FILE    the metrics file or FIFO (JSON lines)
  --http-api-max-payload-size BYTES   largest request body (default ${DEFAULT_MAX_PAYLOAD_BYTES})
  --start-time-us, --start-time-cpu-us, --parent-cpu-time-us US
                         the launcher's clocks (CLOCK_MONOTONIC, process CPU), for the metrics
                         api_server.process_startup_time_us and process_startup_time_cpu_us
  --version              Firecracker's version line (the API petasan implements), then petasan's
  --metadata FILE        JSON that fills the MMDS data store before boot
  --mmds-size-limit BYTES   the MMDS data store's limit (default: the payload limit)
  --no-seccomp           install no seccomp filters (by default each thread installs its own)
  --seccomp-filter FILE  the threads' system call lists from FILE (JSON, see the README) instead of petasan's
Accepted with a warning, no effect yet: --boot-timer, --enable-pci.
Refused (not supported yet): --snapshot-version, --describe-snapshot FILE.
The guest's serial console is on stdin/stdout; on a terminal, Ctrl-A x quits.`;

/** A bad command line; `exitCode` is Firecracker's for the case. */
export class ApiModeUsageError extends Error {
  override readonly name = "ApiModeUsageError";
  constructor(message: string, readonly exitCode: number = EXIT_ARG_PARSING) {
    super(message);
  }
}

/** The launcher's clocks, in microseconds (Firecracker's ProcessTimeReporter inputs). */
export interface ProcessStartTimes {
  /** CLOCK_MONOTONIC when the launcher started the process. */
  startTimeUs?: number;
  /** The process's CPU clock at that moment. */
  startTimeCpuUs?: number;
  /** CPU time the launcher itself spent, added to petasan's. */
  parentCpuTimeUs?: number;
}

export type ApiModeArgs =
  | { kind: "help" }
  | { kind: "version" }
  /** A flag petasan accepts but cannot act on: print `message` and exit with EXIT_GENERIC_ERROR. */
  | { kind: "unsupported"; message: string }
  | {
      kind: "serve";
      /** Absent with --no-api. */
      apiSocketPath?: string;
      configFile?: string;
      instanceId: string;
      /** The logger settings the flags gave (an empty object when none). */
      logger: LoggerConfig;
      metricsPath?: string;
      maxPayloadBytes: number;
      startTimes: ProcessStartTimes;
      /** Seccomp: petasan's lists (default), none (--no-seccomp) or a filter file's (--seccomp-filter). */
      seccomp: SeccompChoice;
      /** One line each, for flags accepted without effect. */
      warnings: string[];
      /** The MMDS data store's limit (Firecracker's default: the API payload limit). */
      mmdsSizeLimit: number;
      /** --metadata: a JSON file that fills the MMDS data store before boot. */
      metadataFile?: string;
    };

const OPTIONS = {
  "api-sock": { type: "string" },
  id: { type: "string" },
  "seccomp-filter": { type: "string" },
  "no-seccomp": { type: "boolean" },
  "start-time-us": { type: "string" },
  "start-time-cpu-us": { type: "string" },
  "parent-cpu-time-us": { type: "string" },
  "config-file": { type: "string" },
  metadata: { type: "string" },
  "no-api": { type: "boolean" },
  "log-path": { type: "string" },
  level: { type: "string" },
  module: { type: "string" },
  "show-level": { type: "boolean" },
  "show-log-origin": { type: "boolean" },
  "metrics-path": { type: "string" },
  "boot-timer": { type: "boolean" },
  version: { type: "boolean" },
  "snapshot-version": { type: "boolean" },
  "describe-snapshot": { type: "string" },
  "http-api-max-payload-size": { type: "string" },
  "mmds-size-limit": { type: "string" },
  "enable-pci": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** Flags accepted with a warning: what petasan lacks, so the flag changes nothing. */
const NO_EFFECT_YET: Readonly<Record<string, string>> = {
  "boot-timer": "petasan has no boot timer device yet: --boot-timer is ignored",
  "enable-pci": "petasan has no PCI transport yet: devices stay on virtio-mmio",
};

export function parseApiModeArgs(argv: string[]): ApiModeArgs {
  let values;
  let tokens;
  try {
    ({ values, tokens } = parseArgs({ args: argv, strict: true, allowPositionals: false, tokens: true, options: OPTIONS }));
  } catch (error) {
    throw new ApiModeUsageError((error as Error).message);
  }
  // Firecracker's ArgParser looks for --help and --version before any other rule.
  if (values.help) return { kind: "help" };
  if (values.version) return { kind: "version" };
  const seen = new Set<string>();
  for (const token of tokens) {
    if (token.kind !== "option") continue;
    if (seen.has(token.name)) throw new ApiModeUsageError(`The argument '${token.name}' was provided more than once.`);
    seen.add(token.name);
  }
  if (values["no-seccomp"] && values["seccomp-filter"] !== undefined) {
    throw new ApiModeUsageError(SECCOMP_FLAGS_EXCLUSIVE);
  }
  if (values["snapshot-version"] || values["describe-snapshot"] !== undefined) {
    const flag = values["snapshot-version"] ? "--snapshot-version" : `--describe-snapshot ${values["describe-snapshot"]}`;
    return { kind: "unsupported", message: `${flag}: petasan does not support describing snapshot versions yet (its snapshot format is its own)` };
  }
  if (values["no-api"] && values["config-file"] === undefined) throw new ApiModeUsageError("--no-api requires --config-file");
  if (values["no-api"] && values["api-sock"] !== undefined) throw new ApiModeUsageError("--api-sock and --no-api exclude each other");

  const instanceId = values.id ?? DEFAULT_INSTANCE_ID;
  if (!/^[A-Za-z0-9-]{1,64}$/.test(instanceId)) {
    throw new ApiModeUsageError(`--id: "${instanceId}" must be 1 to 64 letters, digits or '-'`);
  }
  const payload = values["http-api-max-payload-size"];
  if (payload !== undefined && !/^[1-9]\d{0,9}$/.test(payload)) {
    throw new ApiModeUsageError(`--http-api-max-payload-size: "${payload}" is not a positive whole number of bytes`);
  }
  const warnings = Object.keys(NO_EFFECT_YET)
    .filter((flag) => values[flag as keyof typeof values] !== undefined)
    .map((flag) => NO_EFFECT_YET[flag]);
  const maxPayloadBytes = payload === undefined ? DEFAULT_MAX_PAYLOAD_BYTES : Number(payload);
  return {
    kind: "serve",
    apiSocketPath: values["no-api"] ? undefined : (values["api-sock"] ?? DEFAULT_API_SOCKET_PATH),
    configFile: values["config-file"],
    instanceId,
    logger: parseLoggerFlags(values),
    metricsPath: values["metrics-path"],
    maxPayloadBytes,
    startTimes: {
      startTimeUs: wholeNumber("start-time-us", values["start-time-us"]),
      startTimeCpuUs: wholeNumber("start-time-cpu-us", values["start-time-cpu-us"]),
      parentCpuTimeUs: wholeNumber("parent-cpu-time-us", values["parent-cpu-time-us"]),
    },
    seccomp: seccompChoice(values["no-seccomp"], values["seccomp-filter"]),
    warnings,
    mmdsSizeLimit: wholeNumber("mmds-size-limit", values["mmds-size-limit"]) ?? maxPayloadBytes,
    ...(values.metadata !== undefined && { metadataFile: values.metadata }),
  };
}

/** A whole number flag value (Firecracker parses these as u64/usize). */
function wholeNumber(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,16}$/.test(text)) throw new ApiModeUsageError(`--${flag}: "${text}" is not a whole number`);
  return Number(text);
}

/** The logger flags through the API's Logger schema, so levels and messages match PUT /logger's. */
function parseLoggerFlags(values: {
  level?: string;
  "log-path"?: string;
  "show-level"?: boolean;
  "show-log-origin"?: boolean;
  module?: string;
}): LoggerConfig {
  const raw = {
    ...(values["log-path"] !== undefined && { log_path: values["log-path"] }),
    ...(values.level !== undefined && { level: values.level }),
    ...(values["show-level"] && { show_level: true }),
    ...(values["show-log-origin"] && { show_log_origin: true }),
    ...(values.module !== undefined && { module: values.module }),
  };
  try {
    return loggerSchema.parse(raw);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    // Firecracker reports a bad --level as a configuration error (MainError::InvalidLogLevel).
    const flag = error.field === "level" ? "--level" : error.field === "log_path" ? "--log-path" : `--${error.field}`;
    throw new ApiModeUsageError(`${flag}: ${error.problem}`, error.field === "level" ? EXIT_BAD_CONFIGURATION : EXIT_ARG_PARSING);
  }
}
