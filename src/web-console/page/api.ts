// The console's HTTP API (http-api.ts on the server). Same-origin requests carry the token cookie, if any.

export class ApiError extends Error {}

export async function api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(path, {
    method,
    headers: method === "GET" ? {} : { "Content-Type": "application/json" },
    body: method === "GET" ? undefined : JSON.stringify(body ?? {}),
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ApiError(`${response.status} ${response.statusText}`);
  }
  if (!response.ok) throw new ApiError((json as { error?: string }).error ?? `${response.status} ${response.statusText}`);
  return json as T;
}

/** A WebSocket URL on this server. */
export function socketUrl(path: string): string {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}${path}`;
}
