/**
 * The Firecracker-compatible command line (Firecracker src/firecracker/src/main.rs): the same flag names,
 * defaults and rules, e.g. --no-api requires --config-file and --api-sock defaults to a fixed path
 * (Firecracker's /run/firecracker.socket, here /run/petasan.socket). Firecracker's seccomp, jailer-timing,
 * Snapshot and PCI flags are not offered: petasan has none of those features.
 */
import { parseArgs } from "node:util";
import { ConfigError, loggerSchema, type LoggerConfig } from "../config/index.js";
import { DEFAULT_MAX_PAYLOAD_BYTES } from "../api/index.js";

export const DEFAULT_API_SOCKET_PATH = "/run/petasan.socket";
/** Firecracker's logger DEFAULT_INSTANCE_ID. */
export const DEFAULT_INSTANCE_ID = "anonymous-instance";

/** Firecracker's FcExitCode (vmm/src/lib.rs) for the failures of this mode. */
export const EXIT_GENERIC_ERROR = 1;
export const EXIT_BAD_CONFIGURATION = 152;
export const EXIT_ARG_PARSING = 153;

export const API_MODE_USAGE = `usage: petasan [--api-sock PATH] [--config-file FILE [--no-api]] [--id ID]
               [--level LEVEL] [--log-path FILE] [--show-level] [--show-log-origin] [--module PREFIX]
               [--metrics-path FILE] [--http-api-max-payload-size BYTES] [--version]
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
  --metadata FILE        JSON that fills the MMDS data store before boot
  --mmds-size-limit BYTES   the MMDS data store's limit (default: the payload limit)
The guest's serial console is on stdin/stdout; on a terminal, Ctrl-A x quits.`;

/** A bad command line; `exitCode` is Firecracker's for the case. */
export class ApiModeUsageError extends Error {
  override readonly name = "ApiModeUsageError";
  constructor(message: string, readonly exitCode: number = EXIT_ARG_PARSING) {
    super(message);
  }
}

export type ApiModeArgs =
  | { kind: "help" }
  | { kind: "version" }
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
      /** The MMDS data store's limit (Firecracker's default: the API payload limit). */
      mmdsSizeLimit: number;
      /** --metadata: a JSON file that fills the MMDS data store before boot. */
      metadataFile?: string;
    };

export function parseApiModeArgs(argv: string[]): ApiModeArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        "api-sock": { type: "string" },
        "config-file": { type: "string" },
        "no-api": { type: "boolean" },
        id: { type: "string" },
        level: { type: "string" },
        "log-path": { type: "string" },
        "show-level": { type: "boolean" },
        "show-log-origin": { type: "boolean" },
        module: { type: "string" },
        "metrics-path": { type: "string" },
        "http-api-max-payload-size": { type: "string" },
        "mmds-size-limit": { type: "string" },
        metadata: { type: "string" },
        version: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    throw new ApiModeUsageError((error as Error).message);
  }
  if (values.help) return { kind: "help" };
  if (values.version) return { kind: "version" };
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
  const mmdsLimit = values["mmds-size-limit"];
  if (mmdsLimit !== undefined && !/^\d{1,10}$/.test(mmdsLimit)) {
    throw new ApiModeUsageError(`--mmds-size-limit: "${mmdsLimit}" is not a whole number of bytes`);
  }
  const maxPayloadBytes = payload === undefined ? DEFAULT_MAX_PAYLOAD_BYTES : Number(payload);
  return {
    kind: "serve",
    apiSocketPath: values["no-api"] ? undefined : (values["api-sock"] ?? DEFAULT_API_SOCKET_PATH),
    configFile: values["config-file"],
    instanceId,
    logger: parseLoggerFlags(values),
    metricsPath: values["metrics-path"],
    maxPayloadBytes,
    mmdsSizeLimit: mmdsLimit === undefined ? maxPayloadBytes : Number(mmdsLimit),
    ...(values.metadata !== undefined && { metadataFile: values.metadata }),
  };
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
