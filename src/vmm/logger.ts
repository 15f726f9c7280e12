/** Leveled log lines (Firecracker's levels) to a file descriptor, usable from any thread. */
import { writeSync } from "node:fs";

export const LOG_LEVELS = ["Error", "Warning", "Info", "Debug", "Trace"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type Logger = (level: LogLevel, message: string) => void;

export interface LoggerOptions {
  fd: number;
  level: LogLevel;
  /** Who is logging, e.g. "devices" or "vcpu0". */
  origin: string;
}

export function createLogger({ fd, level, origin }: LoggerOptions): Logger {
  const max = LOG_LEVELS.indexOf(level);
  return (lvl, message) => {
    if (LOG_LEVELS.indexOf(lvl) > max) return;
    const line = `${new Date().toISOString()} [petasan:${origin}:${lvl.toUpperCase()}] ${message}\n`;
    try {
      writeSync(fd, line);
    } catch {
      // A logger that cannot write must not take the VMM down with it.
    }
  };
}
