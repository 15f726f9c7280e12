/**
 * An epoll loop over file descriptors (eventfds, taps), run by the device thread, which may block in
 * epoll_wait because nothing else runs on it. struct epoll_event is packed on x86-64: u32 events, u64 data.
 */
import { epollCreate1, epollCtl, epollWait, close, errno } from "../../sys/libc.js";
import { check, EINTR } from "../../sys/errors.js";
import { SysError } from "../../sys/errors.js";

export const EPOLLIN = 0x001;
export const EPOLLOUT = 0x004;
export const EPOLLERR = 0x008;
export const EPOLLHUP = 0x010;
export const EPOLLRDHUP = 0x2000;
/** Edge-triggered: reported when readiness changes, not while it lasts (epoll(7)). */
export const EPOLLET = 0x8000_0000;
const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;
const EPOLL_CTL_MOD = 3;
const EPOLL_CLOEXEC = 0o2000000;
const EVENT_SIZE = 12;
const MAX_EVENTS = 64;

export type FdHandler = (events: number) => void;

/** What a device needs of the loop: watching its fds. */
export type FdWatcher = Pick<EventLoop, "add" | "modify" | "remove">;

export class EventLoop {
  private readonly epfd = check(epollCreate1(EPOLL_CLOEXEC), "epoll_create1");
  private readonly handlers = new Map<number, FdHandler>();
  private readonly events = new Uint8Array(EVENT_SIZE * MAX_EVENTS);
  private readonly eventsView = new DataView(this.events.buffer);
  private running = false;

  private ctl(op: number, fd: number, events: number): void {
    const ev = new Uint8Array(EVENT_SIZE);
    const dv = new DataView(ev.buffer);
    dv.setUint32(0, events, true);
    dv.setBigUint64(4, BigInt(fd), true);
    check(epollCtl(this.epfd, op, fd, ev), "epoll_ctl", `fd ${fd}`);
  }

  add(fd: number, handler: FdHandler, events = EPOLLIN): void {
    this.ctl(EPOLL_CTL_ADD, fd, events);
    this.handlers.set(fd, handler);
  }

  /** Changes which events `fd` is watched for (0 = none, e.g. a tap while the guest has no RX buffers). */
  modify(fd: number, events: number): void {
    this.ctl(EPOLL_CTL_MOD, fd, events);
  }

  remove(fd: number): void {
    if (!this.handlers.delete(fd)) return;
    this.ctl(EPOLL_CTL_DEL, fd, 0);
  }

  /**
   * Runs handlers until stop() is called by one of them. The batch epoll_wait returned is served to its end even
   * then: an edge-triggered fd's event left unserved would never be reported again, and the loop may be run again
   * (the device thread stops it to do asynchronous work, such as loading a VM's modules, between two runs).
   */
  run(): void {
    this.running = true;
    while (this.running) {
      const n = epollWait(this.epfd, this.events, MAX_EVENTS, -1);
      if (n < 0) {
        const e = errno();
        if (e === EINTR) continue;
        throw new SysError("epoll_wait", e);
      }
      for (let i = 0; i < n; i++) {
        const events = this.eventsView.getUint32(i * EVENT_SIZE, true);
        const fd = Number(this.eventsView.getBigUint64(i * EVENT_SIZE + 4, true));
        this.handlers.get(fd)?.(events);
      }
    }
  }

  stop(): void {
    this.running = false;
  }

  close(): void {
    close(this.epfd);
  }
}
