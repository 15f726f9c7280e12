/**
 * ActionError: why a request could not become an action, or an action failed, with the HTTP
 * status to answer. The fault texts follow Firecracker's (api_server/parsed_request.rs,
 * vmm/rpc_interface.rs) so clients that match on them keep working.
 */
export class ActionError extends Error {
  override readonly name = "ActionError";
  constructor(readonly status: number, readonly faultMessage: string, options?: ErrorOptions) {
    super(faultMessage, options);
  }
}

/** Firecracker answers every client or VMM error with 400 Bad Request. */
export const BAD_REQUEST = 400;
/** Firecracker answers an MMDS store past its size limit with 413 (parsed_request.rs, MmdsLimitExceeded). */
export const PAYLOAD_TOO_LARGE = 413;
/** The swagger `default` response: something failed inside petasan itself. */
export const INTERNAL_SERVER_ERROR = 500;

export function badRequest(faultMessage: string, cause?: unknown): ActionError {
  return new ActionError(BAD_REQUEST, faultMessage, cause === undefined ? undefined : { cause });
}

export const NOT_SUPPORTED_PRE_BOOT = "The requested operation is not supported before starting the microVM.";
export const NOT_SUPPORTED_POST_BOOT = "The requested operation is not supported after starting the microVM.";
/** petasan's: Firecracker's process exits with its guest, so it never answers in this state. */
export const VM_STOPPED = "The microVM has stopped; only GET requests are served.";
export const EMPTY_ID = "The ID cannot be empty.";
export const INVALID_ID = "API Resource IDs can only contain alphanumeric characters and underscores.";
export const GET_WITH_BODY = "GET request cannot have a body.";
export const MISSING_KERNEL = "Start microvm error: Cannot start microvm without kernel configuration.";

export function emptyBody(method: string): string {
  return `Empty ${method} request.`;
}

export function invalidPathMethod(method: string, path: string): string {
  return `Invalid request method and/or path: ${method} ${path}.`;
}

/** A Firecracker endpoint or resource for a feature petasan lacks (one line, naming the feature). */
export function notSupportedYet(what: string, feature: string): string {
  return `${what}: petasan does not support ${feature} yet.`;
}

export function deserializeFailure(detail: string): string {
  return `An error occurred when deserializing the json body of a request: ${detail}.`;
}

export function payloadTooLarge(size: number, limit: number): string {
  return `Request payload with size ${size} is larger than the limit of ${limit} allowed by server.`;
}

/** An error's message followed by those of its causes, as Firecracker prints its error chains. */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  for (let current = error; current !== undefined && parts.length < 8; ) {
    if (current instanceof Error) {
      // A wrapper that already quotes its cause's message (as BuildError does) needs no repeat of it.
      const message = current.message;
      if (!parts.some((p) => p.includes(message))) parts.push(message);
      current = current.cause;
    } else {
      parts.push(String(current));
      current = undefined;
    }
  }
  return parts.join(": ");
}
