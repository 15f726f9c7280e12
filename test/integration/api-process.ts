/** A petasan process in Firecracker API mode, for integration tests: start it and wait until its socket answers. */
import { setTimeout as sleep } from "node:timers/promises";
import { requestOverSocket, type ApiResponse } from "../../src/api/api-client.js";
import type { Running } from "./petasan-process.js";

/** GET / once the server listens; fails if petasan ends first. */
export async function waitForApi(socketPath: string, petasan: Running): Promise<ApiResponse> {
  let ended = false;
  void petasan.finished.then(() => (ended = true));
  for (;;) {
    try {
      return await requestOverSocket(socketPath, "GET", "/");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" && code !== "ECONNREFUSED") throw error;
      if (ended) throw new Error(`petasan ended before serving ${socketPath}: ${JSON.stringify(await petasan.finished)}`);
      await sleep(50);
    }
  }
}

export function faultOf(response: ApiResponse): string {
  return (response.json as { fault_message?: string } | undefined)?.fault_message ?? "";
}
