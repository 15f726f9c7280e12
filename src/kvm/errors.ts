import { strerror } from "../sys/libc.js";

/** A failed KVM ioctl, named, with errno. */
export class KvmError extends Error {
  override readonly name = "KvmError";
  constructor(readonly ioctl: string, readonly errno: number, detail?: string) {
    super(`${ioctl}${detail ? ` (${detail})` : ""} failed: ${strerror(errno)} (errno ${errno})`);
  }
}

/** The host's KVM lacks something petasan needs. */
export class KvmCapabilityError extends Error {
  override readonly name = "KvmCapabilityError";
  constructor(readonly capability: string) {
    super(`this host's KVM lacks ${capability}, which petasan needs`);
  }
}
