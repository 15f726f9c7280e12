/**
 * One VM's serial console shared by every viewer (browser terminals over WebSockets). The console stream is
 * read all the time, whoever watches, so the guest never waits on a browser; the last SCROLLBACK_BYTES of
 * output are kept, so a viewer that joins late (or reloads the page) sees what came before. Each viewer gets
 * every byte after that; one whose socket stops draining (more than MAX_VIEWER_BACKLOG bytes unsent) is
 * dropped with a close code rather than buffered without bound. Input from any viewer goes to the guest.
 */
import type { Duplex } from "node:stream";

export const SCROLLBACK_BYTES = 256 * 1024;
export const MAX_VIEWER_BACKLOG = 4 * 1024 * 1024;
/** WebSocket close codes (RFC 6455 7.4.1): 1000 normal (the VM ended), 1013 try again later (too slow). */
export const CLOSE_VM_ENDED = 1000;
export const CLOSE_TOO_SLOW = 1013;

/** The part of a WebSocket the hub uses (ws's WebSocket has it). */
export interface Viewer {
  readonly bufferedAmount: number;
  send(data: Buffer): void;
  close(code: number, reason: string): void;
}

export class ConsoleHub {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  private readonly viewers = new Set<Viewer>();
  private ended = false;

  constructor(private readonly console: Duplex) {
    console.on("data", (chunk: Buffer) => this.output(chunk));
    console.on("end", () => this.end());
    // An error ends the stream like EOF for the viewers; the VM reports its own end.
    console.on("error", () => this.end());
  }

  get viewerCount(): number {
    return this.viewers.size;
  }

  /** Sends the scrollback, then everything after; a viewer joining after the end gets the scrollback and a close. */
  add(viewer: Viewer): void {
    if (this.kept > 0) viewer.send(Buffer.concat(this.chunks));
    if (this.ended) return viewer.close(CLOSE_VM_ENDED, "the VM has ended");
    this.viewers.add(viewer);
  }

  remove(viewer: Viewer): void {
    this.viewers.delete(viewer);
  }

  /** Input for the guest (a VM not started yet holds it; a stopped one drops it). */
  input(bytes: Buffer): void {
    if (!this.ended) this.console.write(bytes);
  }

  /** The scrollback as text (for tests and the API). */
  scrollback(): string {
    return Buffer.concat(this.chunks).toString("utf8");
  }

  private output(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.kept += chunk.length;
    while (this.kept - this.chunks[0].length >= SCROLLBACK_BYTES) this.kept -= this.chunks.shift()!.length;
    if (this.kept > SCROLLBACK_BYTES) {
      // Keep the last SCROLLBACK_BYTES exactly: trim the head chunk.
      this.chunks[0] = this.chunks[0].subarray(this.kept - SCROLLBACK_BYTES);
      this.kept = SCROLLBACK_BYTES;
    }
    for (const viewer of this.viewers) {
      if (viewer.bufferedAmount > MAX_VIEWER_BACKLOG) {
        this.viewers.delete(viewer);
        viewer.close(CLOSE_TOO_SLOW, "this viewer fell too far behind the console; reload to see it again");
      } else viewer.send(chunk);
    }
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const viewer of this.viewers) viewer.close(CLOSE_VM_ENDED, "the VM has ended");
    this.viewers.clear();
  }
}
