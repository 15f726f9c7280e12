/**
 * Moves the calling thread into the jail the way Firecracker's jailer does (src/jailer/src/chroot.rs): a new
 * mount namespace, the jail's root bound onto itself (pivot_root wants the new root to be a mount), pivot_root
 * there, and the old root unmounted and its mount point removed. The host's file systems are then not merely out
 * of sight, as after a chroot, but gone from the namespace: a process in the jail that regains root has nothing
 * to climb back to.
 *
 * Only the calling thread moves. Node runs other threads (V8's, libuv's pool), and unshare(CLONE_NEWNS) gives the
 * caller alone a new mount namespace and a file-system context of its own (the kernel adds CLONE_FS: ksys_unshare);
 * the caller then execs, or forks the VMM (spawn runs in this thread), and the process that runs the VMM has only
 * the jail. So after this call, paths in this thread are the jail's, while libuv's pool (Node's asynchronous
 * file calls) still sees the host's: the jailer makes only synchronous calls afterwards.
 */
import { check } from "../sys/errors.js";
import { chdir, chroot, mkdir, mount, pivotRootSyscall, rmdir, umount2, unshare } from "../sys/libc.js";
import { SYSCALLS_X86_64 } from "../sys/seccomp/syscall-numbers.js";

const CLONE_NEWNS = 0x00020000;
// <linux/mount.h>
const MS_BIND = 0x1000;
const MS_REC = 0x4000;
const MS_PRIVATE = 0x40000;
const MNT_DETACH = 2;
/** Where pivot_root puts the old root, inside the jail, until it is unmounted. */
const OLD_ROOT = "old_root";

export function pivotIntoJail(root: string): void {
  check(unshare(CLONE_NEWNS), "unshare", "CLONE_NEWNS");
  // No mount or unmount here reaches the host's namespace, nor any of the host's this one. (Firecracker makes
  // them MS_SLAVE, which lets the host's later mounts in; private lets nothing through either way.)
  check(mount(null, "/", null, MS_REC | MS_PRIVATE, null), "mount", "/ private");
  check(mount(root, root, null, MS_BIND | MS_REC, null), "mount", `bind ${root}`);
  check(chdir(root), "chdir", root);
  check(mkdir(OLD_ROOT, 0o600), "mkdir", `${root}/${OLD_ROOT}`);
  check(Number(pivotRootSyscall(SYSCALLS_X86_64.pivot_root, ".", OLD_ROOT)), "pivot_root", root);
  // pivot_root does not promise that the working directory is the new root (Firecracker's remark): make it so.
  check(chdir("/"), "chdir", "/");
  check(umount2(`/${OLD_ROOT}`, MNT_DETACH), "umount2", `/${OLD_ROOT}`);
  check(rmdir(`/${OLD_ROOT}`), "rmdir", `/${OLD_ROOT}`);
  // pivot_root moved this thread's root along with the namespace's; set it explicitly all the same.
  check(chroot("."), "chroot", root);
}
