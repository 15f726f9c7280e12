/** Taking over a Unix socket path: a stale socket file is removed, a live server is left alone. */
import { lstat, unlink } from "node:fs/promises";
import { connect } from "node:net";

/** The API server could not start or stop on its socket. */
export class ApiServerError extends Error {
  override readonly name = "ApiServerError";
  constructor(readonly socketPath: string, problem: string, options?: ErrorOptions) {
    super(`API socket ${socketPath}: ${problem}`, options);
  }
}

/** Makes `socketPath` free to listen on, or throws ApiServerError saying why it is not. */
export async function claimSocketPath(socketPath: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(socketPath)).isSocket();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw new ApiServerError(socketPath, `cannot inspect: ${(error as Error).message}`, { cause: error });
  }
  if (!isSocket) throw new ApiServerError(socketPath, "exists and is not a socket; refusing to replace it");
  if (await hasListener(socketPath)) throw new ApiServerError(socketPath, "another server is already listening on it");
  await unlink(socketPath);
}

/** True if something accepts connections on the socket; false if it is a leftover file. */
function hasListener(socketPath: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const probe = connect(socketPath);
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", (error: NodeJS.ErrnoException) => {
      probe.destroy();
      if (error.code === "ECONNREFUSED" || error.code === "ENOENT") resolve(false);
      else reject(new ApiServerError(socketPath, `cannot probe for a live server: ${error.message}`, { cause: error }));
    });
  });
}
