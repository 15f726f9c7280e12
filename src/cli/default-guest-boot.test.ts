import { test } from "node:test";
import assert from "node:assert/strict";
import { defaultGuestBootSource } from "./default-guest-boot.js";
import { EMULATED_RING0_KERNEL_ARGS } from "../arch/x86/host.js";

const guest = { kernel: "/cache/vmlinux", initrd: "/cache/initramfs.cpio", cmdline: "console=ttyS0 reboot=k panic=-1" };
const emulated = { hasRootDrive: false, hardwareVirtualization: false };

test("the default guest boots its initramfs, with the emulator's arguments on a host without VT-x/AMD-V", () => {
  const { bootSource, notes } = defaultGuestBootSource(guest, undefined, emulated);
  assert.equal(bootSource.initrd_path, guest.initrd);
  assert.equal(bootSource.boot_args, `${guest.cmdline} ${EMULATED_RING0_KERNEL_ARGS.join(" ")}`);
  assert.equal(notes.length, 1);
  const hw = defaultGuestBootSource(guest, undefined, { ...emulated, hardwareVirtualization: true });
  assert.equal(hw.bootSource.boot_args, guest.cmdline);
  assert.deepEqual(hw.notes, []);
});

test("a root drive or root= boots the user's root file system, not the default initramfs", () => {
  const drive = defaultGuestBootSource(guest, undefined, { ...emulated, hasRootDrive: true });
  assert.equal(drive.bootSource.initrd_path, undefined);
  assert.match(drive.notes.join("\n"), /initramfs is left out/);
  const arg = defaultGuestBootSource(guest, "console=ttyS0 root=/dev/vdb", emulated);
  assert.equal(arg.bootSource.initrd_path, undefined);
});

test("arguments the user already gave are not added a second time", () => {
  const user = `console=ttyS0 ${EMULATED_RING0_KERNEL_ARGS.join(" ")} root=/dev/vda rw`;
  const { bootSource, notes } = defaultGuestBootSource(guest, user, { ...emulated, hasRootDrive: true });
  assert.equal(bootSource.boot_args, user);
  assert.ok(!notes.some((n) => n.includes("adding kernel arguments")), "nothing was added, so nothing is announced");
  // The user's own value of a setting wins over the host's.
  const own = defaultGuestBootSource(guest, "console=ttyS0 clearcpuid=1", emulated);
  assert.equal(own.bootSource.boot_args, `console=ttyS0 clearcpuid=1 ${EMULATED_RING0_KERNEL_ARGS.filter((a) => !a.startsWith("clearcpuid=")).join(" ")}`);
});
