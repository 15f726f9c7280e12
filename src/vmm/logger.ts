/** Leveled log lines (Firecracker's levels) to a file descriptor, usable from any thread. */
import { writeSync } from "node:fs";

export const LOG_LEVELS = ["Error", "Warning", "Info", "Debug", "Trace"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type Logger = (level: LogLevel, message: string) => void;

/** Where log lines go and what they show (Firecracker's logger settings). */
export interface LogSettings {
  fd: number;
  level: LogLevel;
  /** Show each line's level (Firecracker's show_level); default true. */
  showLevel?: boolean;
  /** Show which part of petasan logged it (Firecracker's show_log_origin); default true. */
  showOrigin?: boolean;
  /** Only lines whose origin starts with this (Firecracker's module filter). */
  module?: string;
}

export interface LoggerOptions extends LogSettings {
  /** Who is logging, e.g. "devices" or "vmm". */
  origin: string;
}

export function createLogger({ fd, level, origin, showLevel = true, showOrigin = true, module }: LoggerOptions): Logger {
  const max = LOG_LEVELS.indexOf(level);
  if (module !== undefined && !origin.startsWith(module)) return () => {};
  const tag = (lvl: LogLevel) => ["petasan", ...(showOrigin ? [origin] : []), ...(showLevel ? [lvl.toUpperCase()] : [])].join(":");
  return (lvl, message) => {
    if (LOG_LEVELS.indexOf(lvl) > max) return;
    const line = `${new Date().toISOString()} [${tag(lvl)}] ${message}\n`;
    try {
      writeSync(fd, line);
    } catch {
      // A logger that cannot write must not take the VMM down with it.
    }
  };
}
