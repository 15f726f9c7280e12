/** A minimal client for the API socket (tests, CLI tools): one request, whole response. */
import { request } from "node:http";

export interface ApiResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Raw response body ("" for 204). */
  text: string;
  /** The body parsed as JSON, or undefined when there is none. */
  json: unknown;
}

/** Sends `body` as-is (no Content-Type, like `curl --data`), so strings can be malformed on purpose. */
export function requestOverSocket(socketPath: string, method: string, path: string, body?: string | object): Promise<ApiResponse> {
  const payload = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = {};
    if (payload !== undefined) headers["Content-Length"] = Buffer.byteLength(payload);
    const outgoing = request({ socketPath, method, path, headers, agent: false }, (incoming) => {
      const chunks: Buffer[] = [];
      incoming.on("data", (chunk: Buffer) => chunks.push(chunk));
      incoming.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        resolve({ status: incoming.statusCode ?? 0, headers: incoming.headers, text, json: text === "" ? undefined : JSON.parse(text) });
      });
      incoming.on("error", reject);
    });
    outgoing.on("error", reject);
    outgoing.end(payload);
  });
}
