/**
 * The host's end of Firecracker-style vsock for tests (docs/vsock.md): a listener at `<uds>_<port>` for guest
 * connections, and a host-initiated connection through `<uds>` with "CONNECT <port>\n" / "OK <host port>\n".
 */
import { createConnection, createServer, type Server, type Socket } from "node:net";

/** Listens at `<uds>_<port>` and answers each connection's first line with `answer`. */
export function answerGuestConnections(uds: string, port: number, answer: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => {
      socket.on("error", () => {});
      let seen = "";
      socket.on("data", (d) => {
        seen += d.toString();
        if (seen.includes("\n")) socket.end(answer);
      });
    });
    server.once("error", reject);
    server.listen(`${uds}_${port}`, () => resolve(server));
  });
}

/** Reads from `socket` until `pattern` matches what arrived; resolves with the match. */
function readUntil(socket: Socket, pattern: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let seen = "";
    const onData = (d: Buffer) => {
      seen += d.toString();
      const m = pattern.exec(seen);
      if (m) {
        socket.off("data", onData);
        resolve(m);
      }
    };
    socket.on("data", onData);
    socket.once("close", () => reject(new Error(`vsock connection closed; got ${JSON.stringify(seen)}`)));
    socket.once("error", reject);
  });
}

/** Firecracker's host-initiated handshake through `uds`: CONNECT <port>, then OK <host port>. */
export async function connectToGuest(uds: string, port: number): Promise<{ socket: Socket; hostPort: number }> {
  const socket = createConnection(uds);
  try {
    await new Promise((resolve, reject) => socket.once("connect", resolve).once("error", reject));
    socket.write(`CONNECT ${port}\n`);
    const ok = await readUntil(socket, /^OK (\d+)\n/);
    return { socket, hostPort: Number(ok[1]) };
  } catch (error) {
    socket.destroy();
    throw error;
  }
}

/** Connects to guest port `port` through `uds`, sends `line`, and resolves with the host port and the guest's answer. */
export async function askGuest(uds: string, port: number, line: string): Promise<{ hostPort: number; answer: string }> {
  const { socket, hostPort } = await connectToGuest(uds, port);
  try {
    socket.write(line);
    const answer = await readUntil(socket, /^[^\n]*\n/);
    return { hostPort, answer: answer[0] };
  } finally {
    socket.destroy();
  }
}
