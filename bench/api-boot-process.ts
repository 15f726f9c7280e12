/**
 * The api-boot benchmark's clock on a child process: when it was spawned, when the first byte reached
 * its stdout, when its Unix socket first answered an HTTP request. All times are performance.now()
 * in this process, taken in the event-loop callback that saw the event.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { requestOverSocket } from "../src/api/api-client.js";
import { BenchError } from "./bench-error.js";

/** Kills a child that hangs, so a stuck guest fails the run instead of hanging it. */
const CHILD_TIMEOUT_MS = 30_000;
/**
 * Pause between attempts to reach a socket that is not there yet: the readiness times are this much late
 * at most. One millisecond keeps the error below the figures' spread and costs a connect() per attempt.
 */
const SOCKET_POLL_MS = 1;

export interface TimedChild {
  readonly child: ChildProcess;
  /** Just before spawn() was called. */
  readonly spawnedAt: number;
  /** When the first stdout bytes arrived, or undefined before that. */
  firstStdoutAt(): number | undefined;
  stdout(): string;
  /** Resolves when the process has ended; rejects unless it exited with code 0. */
  readonly finished: Promise<void>;
}

export function spawnTimed(command: string, args: readonly string[]): TimedChild {
  const label = [command, ...args].join(" ");
  const spawnedAt = performance.now();
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  let firstStdoutAt: number | undefined;
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("latin1").on("data", (chunk: string) => {
    firstStdoutAt ??= performance.now();
    stdout += chunk;
  });
  child.stderr!.setEncoding("latin1").on("data", (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill("SIGKILL"), CHILD_TIMEOUT_MS);
  const finished = new Promise<void>((resolve, reject) => {
    child.on("error", (error) => reject(new BenchError(`${label}: ${error.message}`)));
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new BenchError(`${label} ended with ${code ?? signal}; stdout:\n${stdout}\nstderr:\n${stderr}`));
    });
  });
  // Callers may be awaiting something else when the child fails; they meet the rejection when they await this.
  finished.catch(() => {});
  return { child, spawnedAt, firstStdoutAt: () => firstStdoutAt, stdout: () => stdout, finished };
}

/** Polls `GET /` on `socketPath` until it is answered; returns when the answer arrived. */
export async function waitForFirstAnswer(socketPath: string, timed: TimedChild): Promise<number> {
  let ended = false;
  void timed.finished.finally(() => (ended = true)).catch(() => {});
  for (;;) {
    try {
      await requestOverSocket(socketPath, "GET", "/");
      return performance.now();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // ENOENT: not bound yet; ECONNREFUSED: bound, not listening yet.
      if (code !== "ENOENT" && code !== "ECONNREFUSED") throw error;
      if (ended) {
        await timed.finished;
        throw new BenchError(`the process ended before answering on ${socketPath}`);
      }
      await sleep(SOCKET_POLL_MS);
    }
  }
}

/** Resolves with the time the first stdout bytes arrived (at once if they already have). */
export function whenFirstStdout(timed: TimedChild): Promise<number> {
  const seen = timed.firstStdoutAt();
  if (seen !== undefined) return Promise.resolve(seen);
  return new Promise((resolve, reject) => {
    timed.child.stdout!.once("data", () => resolve(timed.firstStdoutAt()!));
    timed.finished.then(() => reject(new BenchError("the process ended without writing to stdout")), reject);
  });
}
