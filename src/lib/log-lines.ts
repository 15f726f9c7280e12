/**
 * petasan's log lines as events: every thread of a VM (the device thread included) writes its log with
 * write(2) to a non-blocking pipe (a full pipe drops the line, it never stalls the guest); this side reads
 * the pipe and hands each line, without its newline, to `onLine`.
 */
import { Socket } from "node:net";

export interface LogLineReader {
  /** Resolves once every line written before the pipe's write end was closed has been handed over. */
  readonly ended: Promise<void>;
}

export function readLogLines(readFd: number, onLine: (line: string) => void): LogLineReader {
  const source = new Socket({ fd: readFd, readable: true, writable: false });
  source.setEncoding("utf8");
  let partial = "";
  source.on("data", (text: string) => {
    const lines = (partial + text).split("\n");
    partial = lines.pop()!;
    for (const line of lines) onLine(line);
  });
  const ended = new Promise<void>((resolve) => {
    source.on("close", () => {
      if (partial) onLine(partial);
      partial = "";
      resolve();
    });
  });
  // A read error ends the log like EOF does ("close" follows); the VM goes on.
  source.on("error", () => {});
  return { ended };
}
