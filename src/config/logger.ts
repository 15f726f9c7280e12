/** Logger (firecracker-api.yaml; level parsing as Firecracker's logger/logging.rs LevelFilter). */
import { ConfigError, boolean, nonEmptyString, objectSchema, optional, string, type Check, type ObjectSchema } from "./schema.js";

export type LogLevel = "Error" | "Warning" | "Info" | "Debug" | "Trace" | "Off";

export interface LoggerConfig {
  /** File or named pipe for the human-readable log. */
  log_path?: string;
  level?: LogLevel;
  show_level?: boolean;
  show_log_origin?: boolean;
  /** Only log messages whose origin starts with this module path. */
  module?: string;
}

/** Levels are case-insensitive and "warn" is an alias of "Warning", as in Firecracker. */
const LEVELS_BY_LOWER_CASE: Readonly<Record<string, LogLevel>> = {
  error: "Error",
  warning: "Warning",
  warn: "Warning",
  info: "Info",
  debug: "Debug",
  trace: "Trace",
  off: "Off",
};

const logLevel: Check<LogLevel> = (value, path) => {
  const key = string(value, path).toLowerCase();
  const level = Object.hasOwn(LEVELS_BY_LOWER_CASE, key) ? LEVELS_BY_LOWER_CASE[key] : undefined;
  if (level === undefined) throw new ConfigError(path, 'must be one of "Error", "Warning", "Info", "Debug", "Trace", "Off"');
  return level;
};

export const loggerSchema: ObjectSchema<LoggerConfig> = objectSchema<LoggerConfig>("Logger", {
  log_path: optional(nonEmptyString),
  level: optional(logLevel),
  show_level: optional(boolean),
  show_log_origin: optional(boolean),
  module: optional(string),
});
