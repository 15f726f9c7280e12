/** Runs the petasan CLI as a user would and collects what it printed and how it ended. */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The installed command: it runs the bundle (dist/bundle) when `npm run build` made it, else dist/src. */
export const CLI = fileURLToPath(new URL("../../../bin/petasan.js", import.meta.url));

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Running {
  child: ChildProcess;
  /** Resolves when `text` appears on stdout (rejects if the process ends first). */
  waitFor(text: string | RegExp): Promise<void>;
  finished: Promise<Finished>;
  stdout(): string;
}

/**
 * Starts `petasan ...args`, its command line passed through `wrap` (e.g. to run it inside `ip netns exec NS`);
 * kills it after `timeoutMs` so a hung guest fails the test instead of hanging it.
 */
export function startPetasan(args: string[], timeoutMs: number, wrap: (argv: string[]) => string[] = (argv) => argv): Running {
  const argv = wrap([process.execPath, CLI, ...args]);
  const child = spawn(argv[0], argv.slice(1), { stdio: ["pipe", "pipe", "pipe"] });
  // Input for a VMM that has already ended is simply lost (EPIPE), as for a user typing into a dead console.
  child.stdin!.on("error", () => {});
  let out = "";
  let err = "";
  const waiters: { match: string | RegExp; resolve: () => void; reject: (e: Error) => void }[] = [];
  const check = () => {
    for (const w of [...waiters]) {
      if (typeof w.match === "string" ? out.includes(w.match) : w.match.test(out)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  child.stdout!.on("data", (d: Buffer) => { out += d.toString("latin1"); check(); });
  child.stderr!.on("data", (d: Buffer) => { err += d.toString("latin1"); });
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const finished = new Promise<Finished>((resolve) => {
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      for (const w of waiters.splice(0)) w.reject(new Error(`petasan ended before printing ${w.match}; stdout:\n${out}\nstderr:\n${err}`));
      resolve({ code, signal, stdout: out, stderr: err });
    });
  });
  return {
    child,
    finished,
    stdout: () => out,
    waitFor(match) {
      return new Promise((resolve, reject) => {
        waiters.push({ match, resolve, reject });
        check();
      });
    },
  };
}

export async function runPetasan(args: string[], timeoutMs: number): Promise<Finished> {
  const r = startPetasan(args, timeoutMs);
  r.child.stdin!.end();
  return r.finished;
}
