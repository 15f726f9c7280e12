/**
 * The vsock device's host side, as Firecracker has it (docs/vsock.md): AF_UNIX stream sockets. The VMM listens on
 * `uds_path` for host-initiated connections; a guest connection to port P goes to the listener at `<uds_path>_P`.
 * Every socket is non-blocking (the device thread must never block on a host peer) and close-on-exec.
 */
import { unlinkSync } from "node:fs";
import { EAGAIN, EINTR, SysError } from "../../../sys/errors.js";
import { accept4, bind, close, connect, errno, listen, read, send, shutdown, socket } from "../../../sys/libc.js";

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SHUT_WR = 1;
/** A peer that went away makes send fail with EPIPE instead of raising SIGPIPE (socket(7)). */
const MSG_NOSIGNAL = 0x4000;
/** sizeof(struct sockaddr_un): sa_family_t, then sun_path[108] (unix(7)). */
const SOCKADDR_UN_SIZE = 110;
const SUN_PATH_MAX = 107;
/** Connections the kernel queues for us before accept (listen(2)). */
const BACKLOG = 128;

export class VsockHostError extends Error {
  override readonly name = "VsockHostError";
}

function sockaddrUn(path: string): Buffer {
  const bytes = Buffer.from(path, "utf8");
  if (bytes.length === 0 || bytes.length > SUN_PATH_MAX) throw new VsockHostError(`unix socket path "${path}" must be 1 to ${SUN_PATH_MAX} bytes`);
  const addr = Buffer.alloc(SOCKADDR_UN_SIZE);
  addr.writeUInt16LE(AF_UNIX, 0);
  bytes.copy(addr, 2);
  return addr;
}

function newSocket(what: string): number {
  const fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) as number;
  if (fd < 0) throw new VsockHostError(`${what}: cannot create a unix socket`, { cause: new SysError("socket", errno()) });
  return fd;
}

/** One connected host stream. */
export interface StreamSocket {
  readonly fd: number;
  /** Bytes read into `buf`, 0 at end of stream, -1 when nothing is there now; throws on an error. */
  read(buf: Uint8Array): number;
  /** Bytes written (possibly fewer than asked), -1 when the socket buffer is full; throws on an error (EPIPE). */
  write(buf: Uint8Array): number;
  /** No more bytes from us (SHUT_WR): the host peer reads end of stream. */
  shutdownWrite(): void;
  close(): void;
}

/** What the device needs of its host side: accept host connections, connect to host listeners. */
export interface VsockHostSide {
  /** The listening socket to poll for host-initiated connections. */
  readonly listenFd: number;
  /** The next host connection waiting on the listener, or null. */
  accept(): StreamSocket | null;
  /** Connects to the host listener for guest connections to `port`; throws VsockHostError if there is none. */
  connect(port: number): StreamSocket;
  close(): void;
}

class UnixStream implements StreamSocket {
  private closed = false;

  constructor(readonly fd: number) {}

  read(buf: Uint8Array): number {
    for (;;) {
      const n = read(this.fd, buf, buf.length) as number;
      if (n >= 0) return n;
      const e = errno();
      if (e === EAGAIN) return -1;
      if (e !== EINTR) throw new SysError("read", e, "vsock host socket");
    }
  }

  write(buf: Uint8Array): number {
    for (;;) {
      const n = send(this.fd, buf, buf.length, MSG_NOSIGNAL) as number;
      if (n >= 0) return n;
      const e = errno();
      if (e === EAGAIN) return -1;
      if (e !== EINTR) throw new SysError("send", e, "vsock host socket");
    }
  }

  shutdownWrite(): void {
    shutdown(this.fd, SHUT_WR);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    close(this.fd);
  }
}

export class UnixVsockHost implements VsockHostSide {
  private closed = false;

  private constructor(readonly listenFd: number, readonly udsPath: string) {}

  /**
   * Listens on `udsPath`, which must not exist (as Firecracker: the client removes a stale socket); the file is
   * removed again by close().
   */
  static listen(udsPath: string): UnixVsockHost {
    const addr = sockaddrUn(udsPath);
    const fd = newSocket(`vsock uds_path ${udsPath}`);
    if ((bind(fd, addr, SOCKADDR_UN_SIZE) as number) < 0 || (listen(fd, BACKLOG) as number) < 0) {
      const cause = new SysError("bind/listen", errno(), udsPath);
      close(fd);
      throw new VsockHostError(`vsock uds_path ${udsPath}: cannot listen: ${cause.message}`, { cause });
    }
    return new UnixVsockHost(fd, udsPath);
  }

  accept(): StreamSocket | null {
    for (;;) {
      const fd = accept4(this.listenFd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC) as number;
      if (fd >= 0) return new UnixStream(fd);
      const e = errno();
      if (e === EINTR) continue;
      // EAGAIN: none waiting. Anything else (ECONNABORTED, EMFILE, ...) concerns one attempt: try again on the next event.
      return null;
    }
  }

  connect(port: number): StreamSocket {
    const path = `${this.udsPath}_${port}`;
    const addr = sockaddrUn(path);
    const fd = newSocket(`vsock port ${port}`);
    // A unix stream connect completes at once or fails (ENOENT, ECONNREFUSED; EAGAIN when the backlog is full).
    if ((connect(fd, addr, SOCKADDR_UN_SIZE) as number) < 0) {
      const cause = new SysError("connect", errno(), path);
      close(fd);
      throw new VsockHostError(`no host listener for vsock port ${port}: ${cause.message}`, { cause });
    }
    return new UnixStream(fd);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    close(this.listenFd);
    try {
      unlinkSync(this.udsPath);
    } catch {
      // Already gone: nothing to clean.
    }
  }
}
