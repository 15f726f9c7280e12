/**
 * One VM's share of the device thread's event loop. The thread serves every VM of its process on one epoll loop
 * (device-thread-host.ts); each VM's fds go through its own VmFds, which remembers them, so that a VM can be taken
 * off the loop (stopped, or failed) while the others run on, and which keeps a failure inside: an exception thrown by
 * one of this VM's handlers (a device model's bug, a backend's error) is caught here and ends this VM alone, never
 * the loop or another VM.
 */
import type { EventLoop, FdHandler, FdWatcher } from "./event-loop.js";

export class VmFds implements FdWatcher {
  private readonly fds = new Set<number>();
  private closed = false;

  /** `onFailure`: a handler of this VM threw; called once, with the loop still running (it should close the VM). */
  constructor(private readonly loop: EventLoop, private readonly onFailure: (error: unknown) => void) {}

  add(fd: number, handler: FdHandler, events?: number): void {
    if (this.closed) throw new Error("the VM's devices are closed");
    this.loop.add(fd, (ev) => {
      try {
        handler(ev);
      } catch (e) {
        if (!this.closed) this.onFailure(e);
      }
    }, events);
    this.fds.add(fd);
  }

  modify(fd: number, events: number): void {
    this.loop.modify(fd, events);
  }

  remove(fd: number): void {
    if (this.fds.delete(fd)) this.loop.remove(fd);
  }

  /** Takes every fd of this VM off the loop (their owners close them); later handler calls are dropped. */
  close(): void {
    this.closed = true;
    for (const fd of this.fds) {
      try {
        this.loop.remove(fd);
      } catch {
        // Already closed by its device (a device that failed to open closes what it opened): the kernel dropped it
        // from the epoll set with its last reference, and the loop has forgotten its handler all the same.
      }
    }
    this.fds.clear();
  }
}
