/**
 * Tests that need /dev/kvm run for real; without it they are skipped with one loud line naming why.
 */
import { accessSync, constants } from "node:fs";

let reported = false;

/** undefined when /dev/kvm is usable, else the reason to skip (printed once per test file). */
export function kvmSkipReason(): string | undefined {
  try {
    accessSync("/dev/kvm", constants.R_OK | constants.W_OK);
    return undefined;
  } catch (e) {
    const reason = `/dev/kvm is not usable (${(e as NodeJS.ErrnoException).code}): KVM tests skipped`;
    if (!reported) {
      process.stderr.write(`\n##### SKIPPING: ${reason} #####\n\n`);
      reported = true;
    }
    return reason;
  }
}
