/**
 * The boot source of `petasan run` without --kernel: the default guest's kernel, and its initramfs unless the user
 * boots a root file system of their own, with the kernel arguments this host needs added where the user's own
 * command line does not set them already.
 */
import type { VmConfig } from "../config/vm-config.js";
import { missingArgs, splitCmdline, withDefaultArgs } from "../boot/cmdline.js";
import { EMULATED_RING0_KERNEL_ARGS } from "../arch/x86/host.js";

export interface DefaultGuestFiles {
  kernel: string;
  initrd: string;
  /** The default guest's own kernel arguments, used when the user gives no --cmdline. */
  cmdline: string;
}

export interface DefaultBootChoice {
  bootSource: VmConfig["boot-source"];
  /** What petasan chose on the user's behalf, one line each, for the user to read. */
  notes: string[];
}

/**
 * `userCmdline`: --cmdline, if given; `hasRootDrive`: a drive is the root device. `hardwareVirtualization`: the
 * host has VT-x/AMD-V (otherwise the guest needs the arguments of README "Guest kernels on hosts without …").
 */
export function defaultGuestBootSource(
  guest: DefaultGuestFiles,
  userCmdline: string | undefined,
  opts: { hasRootDrive: boolean; hardwareVirtualization: boolean },
): DefaultBootChoice {
  const notes: string[] = [];
  let bootArgs = userCmdline ?? guest.cmdline;
  if (!opts.hardwareVirtualization) {
    const missing = missingArgs(bootArgs, EMULATED_RING0_KERNEL_ARGS);
    if (missing.length > 0) {
      notes.push(`this host's KVM has no VT-x/AMD-V and emulates guest ring-0 code; adding kernel arguments the emulator needs: ${missing.join(" ")}`);
      bootArgs = withDefaultArgs(bootArgs, missing);
    }
  }
  // A root file system of the user's (a root drive, or root= on their command line) is what the kernel must mount
  // and run /sbin/init from: the default initramfs would run its own /init instead and never use it.
  const ownRoot = opts.hasRootDrive || splitCmdline(bootArgs).some((arg) => arg.startsWith("root="));
  if (ownRoot) notes.push("booting the default kernel on your root file system (the default guest's initramfs is left out)");
  return {
    bootSource: { kernel_image_path: guest.kernel, boot_args: bootArgs, ...(ownRoot ? {} : { initrd_path: guest.initrd }) },
    notes,
  };
}
