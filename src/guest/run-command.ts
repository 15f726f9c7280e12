import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { GuestBuildError } from "./build-error.js";

/** How many of a command's last output lines a failure report quotes: enough to show a compiler error. */
const FAILURE_TAIL_LINES = 40;

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  onStdoutLine?: (line: string) => void;
  onStderrLine?: (line: string) => void;
}

/** Runs a command to completion; a start failure or a non-zero exit becomes a GuestBuildError with its last output. */
export function runCommand(command: string, args: readonly string[], options: RunOptions = {}): Promise<void> {
  const shown = [command, ...args].join(" ");
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
    const tail: string[] = [];
    const remember = (line: string): void => {
      tail.push(line);
      if (tail.length > FAILURE_TAIL_LINES) tail.shift();
    };
    createInterface({ input: child.stdout }).on("line", (line) => {
      remember(line);
      options.onStdoutLine?.(line);
    });
    createInterface({ input: child.stderr }).on("line", (line) => {
      remember(line);
      options.onStderrLine?.(line);
    });
    child.on("error", (err) => reject(new GuestBuildError(`cannot run ${command}: ${err.message}`)));
    child.on("close", (code, signal) => {
      if (code === 0) return resolve();
      const how = signal ? `was killed by ${signal}` : `exited with status ${code}`;
      reject(new GuestBuildError(`\`${shown}\` ${how}${tail.length ? `; last output:\n${tail.join("\n")}` : ""}`));
    });
  });
}

/** Runs a command and returns its standard output lines. */
export async function commandOutput(command: string, args: readonly string[], options: Omit<RunOptions, "onStdoutLine"> = {}): Promise<string[]> {
  const lines: string[] = [];
  await runCommand(command, args, { ...options, onStdoutLine: (line) => lines.push(line) });
  return lines;
}

/** Whether `command` is an executable found on PATH (via the shell's `command -v`). */
export async function isOnPath(command: string): Promise<boolean> {
  try {
    await runCommand("sh", ["-c", 'command -v "$1" >/dev/null', "sh", command]);
    return true;
  } catch {
    return false;
  }
}
