/**
 * The guest's serial console (COM1) as a Node Duplex stream: read the guest's output, write its input.
 *
 * The device thread writes COM1 output with write(2) to the write end of a pipe this side made; the read
 * end is a net.Socket here, so output reaches the stream without passing through the guest's fast path or
 * a postMessage per byte. Back-pressure is end to end: a reader that stops reading lets the pipe fill, and
 * then the device thread (and so the guest's UART) waits, as with a slow terminal; nothing is lost.
 * The readable side ends once the VM has stopped and its last output has been read.
 *
 * Input written before start() is held (and the writer sees back-pressure) until the VM runs; input
 * written after the VM stopped is dropped.
 */
import { Duplex } from "node:stream";
import { Socket } from "node:net";

export class SerialConsole extends Duplex {
  private source?: Socket;
  private input?: (bytes: Uint8Array) => void;
  private stopped = false;
  /** Writes waiting for the VM to start. */
  private pending: { chunk: Buffer; done: (error?: Error | null) => void }[] = [];

  /** Starts reading the guest's output from `readFd` (owned from now on: closed at end of stream). */
  attachOutput(readFd: number): void {
    const source = new Socket({ fd: readFd, readable: true, writable: false });
    this.source = source;
    source.on("data", (chunk: Buffer) => {
      if (!this.push(chunk)) source.pause();
    });
    source.on("end", () => this.push(null));
    source.on("error", (error) => this.destroy(error));
  }

  /** The console has no output to read (it went to a file descriptor, or nowhere). */
  noOutput(): void {
    this.push(null);
  }

  /** Input from now on goes to `input` (the VM runs). */
  attachInput(input: (bytes: Uint8Array) => void): void {
    this.input = input;
    for (const { chunk, done } of this.pending.splice(0)) {
      input(chunk);
      done();
    }
  }

  /** The VM has stopped: input is dropped from now on. */
  detachInput(): void {
    this.stopped = true;
    this.input = undefined;
    for (const { done } of this.pending.splice(0)) done();
  }

  override _read(): void {
    this.source?.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    if (this.input) {
      this.input(chunk);
      done();
    } else if (this.stopped) done();
    else this.pending.push({ chunk, done });
  }

  override _destroy(error: Error | null, done: (error: Error | null) => void): void {
    this.source?.destroy();
    this.detachInput();
    done(error);
  }
}
