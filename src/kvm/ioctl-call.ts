/** One KVM ioctl by name, with a struct buffer or an integer argument; a failure is a KvmError naming it. */
import { ioctlInt, ioctlPtr, errno } from "../sys/libc.js";
import { KvmError } from "./errors.js";
import * as ioctls from "./ioctls.js";

export type IoctlName = Exclude<keyof typeof ioctls, "IOCTL_NAMES">;

export function kvmIoctl(fd: number, name: IoctlName, arg: Uint8Array | number, detail?: string): number {
  const request = ioctls[name];
  const ret = typeof arg === "number" ? ioctlInt(fd, request, arg) : ioctlPtr(fd, request, arg);
  if (ret < 0) throw new KvmError(name, errno(), detail);
  return ret;
}
