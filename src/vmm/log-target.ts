/**
 * Where a VM's log goes and how its lines look, from Firecracker's logger config (LoggerConfig): the
 * config's log_path, else a given fd; level "Off" sends it to /dev/null.
 */
import { closeSync, constants, openSync } from "node:fs";
import type { LoggerConfig, LogLevel } from "../config/logger.js";
import type { LogSettings } from "./logger.js";

/** A log_path that would not open. */
export class LogTargetError extends Error {
  override readonly name = "LogTargetError";
}

export interface LogTarget {
  settings: LogSettings;
  /** Closes the fd if this target opened it. */
  close(): void;
}

/**
 * The log for `logger`: its level (else `defaultLevel`), show_level and show_log_origin (off when absent,
 * as in Firecracker) and module filter; to log_path, else to `defaultFd` (which stays the caller's).
 */
export function openLogTarget(logger: LoggerConfig | undefined, defaultFd: number, defaultLevel: LogLevel): LogTarget {
  const level = logger?.level ?? defaultLevel;
  const look = { showLevel: logger?.show_level ?? false, showOrigin: logger?.show_log_origin ?? false, module: logger?.module };
  // With "Off" nothing should reach a reader; the lowest level keeps the writers cheap.
  if (level === "Off") return openLogFile("/dev/null", { level: "Error", ...look });
  if (logger?.log_path === undefined) return { settings: { fd: defaultFd, level, ...look }, close: () => {} };
  return openLogFile(logger.log_path, { level, ...look });
}

/**
 * Opens a log file as Firecracker does (utils::open_file_nonblock: read-write, created, non-blocking, so
 * a FIFO without a reader neither blocks nor fails), plus O_APPEND so earlier lines are kept.
 */
function openLogFile(path: string, look: Omit<LogSettings, "fd">): LogTarget {
  let fd: number;
  try {
    // A new file is rw-r--r-- (before the umask): only petasan writes it.
    fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_APPEND | constants.O_NONBLOCK, 0o644);
  } catch (error) {
    throw new LogTargetError(`log_path ${path}: cannot open: ${(error as Error).message}`, { cause: error });
  }
  return { settings: { fd, ...look }, close: () => closeSync(fd) };
}
