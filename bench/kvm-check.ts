/** Benchmarks need /dev/kvm; without it they say so in one line and exit 0 (a missing KVM is not a failure). */
import { accessSync, constants } from "node:fs";

/** undefined when /dev/kvm can be opened read-write, else why not. */
export function kvmUnavailableReason(): string | undefined {
  try {
    accessSync("/dev/kvm", constants.R_OK | constants.W_OK);
    return undefined;
  } catch (e) {
    return `/dev/kvm is not usable (${(e as NodeJS.ErrnoException).code})`;
  }
}
