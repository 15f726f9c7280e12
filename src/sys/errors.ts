import { errno, strerror } from "./libc.js";

/** A failed system call: names the call and carries errno. */
export class SysError extends Error {
  override readonly name = "SysError";
  constructor(readonly call: string, readonly errno: number, detail?: string) {
    super(`${call}${detail ? ` (${detail})` : ""} failed: ${strerror(errno)} (errno ${errno})`);
  }
}

/** Returns `ret` unless it is negative, in which case throws a SysError for `call` with the current errno. */
export function check(ret: number, call: string, detail?: string): number {
  if (ret < 0) throw new SysError(call, errno(), detail);
  return ret;
}

export const EINTR = 4;
export const EAGAIN = 11;
