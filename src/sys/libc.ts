/**
 * libc through koffi: the only place petasan declares C functions. Every wrapper
 * returns the raw result; callers turn -1 into a SysError with `check`.
 */
import koffi from "koffi";

const libc = koffi.load("libc.so.6");

export const open = libc.func("int open(const char *path, int flags, int mode)");
export const close = libc.func("int close(int fd)");
/** ioctl with a pointer argument (struct in/out), the common case. */
export const ioctlPtr = libc.func("int ioctl(int fd, unsigned long request, void *arg)");
/** ioctl with an integer argument (KVM_RUN, KVM_CREATE_VCPU, KVM_CHECK_EXTENSION, ...). */
export const ioctlInt = libc.func("int ioctl(int fd, unsigned long request, unsigned long arg)");
export const mmap = libc.func("void *mmap(void *addr, size_t len, int prot, int flags, int fd, int64_t off)");
export const munmap = libc.func("int munmap(void *addr, size_t len)");
export const madvise = libc.func("int madvise(void *addr, size_t len, int advice)");
/** madvise on an address held as a number (exact below 2^53): the balloon's discard path, without BigInt per range. */
export const madviseAddress = libc.func("int madvise(uintptr_t addr, size_t len, int advice)");
/**
 * mbind(2) has no glibc wrapper (libnuma has one): syscall(SYS_mbind, ...). syscall() is variadic; on x86-64 its
 * integer arguments travel exactly as a fixed prototype's do, so one is declared for this call.
 */
export const mbindSyscall = libc.func("long syscall(long number, void *addr, unsigned long len, unsigned long mode, const void *nodemask, unsigned long maxnode, unsigned int flags)");
export const schedSetaffinity = libc.func("int sched_setaffinity(int pid, size_t setsize, const void *mask)");
export const read = libc.func("intptr_t read(int fd, void *buf, size_t count)");
export const write = libc.func("intptr_t write(int fd, const void *buf, size_t count)");
export const pread = libc.func("intptr_t pread(int fd, void *buf, size_t count, int64_t off)");
export const pwrite = libc.func("intptr_t pwrite(int fd, const void *buf, size_t count, int64_t off)");
/**
 * pread/pwrite on host memory given by address (a number, exact below 2^53): the virtio-blk data path
 * for a buffer in one piece of guest RAM, without an iovec or a Buffer object per call.
 */
export const preadAddress = libc.func("intptr_t pread(int fd, uintptr_t buf, size_t count, int64_t off)");
export const pwriteAddress = libc.func("intptr_t pwrite(int fd, uintptr_t buf, size_t count, int64_t off)");
export const preadv = libc.func("intptr_t preadv(int fd, const void *iov, int iovcnt, int64_t off)");
export const pwritev = libc.func("intptr_t pwritev(int fd, const void *iov, int iovcnt, int64_t off)");
export const readv = libc.func("intptr_t readv(int fd, const void *iov, int iovcnt)");
export const writev = libc.func("intptr_t writev(int fd, const void *iov, int iovcnt)");
export const fdatasync = libc.func("int fdatasync(int fd)");
export const fallocate = libc.func("int fallocate(int fd, int mode, int64_t off, int64_t len)");
export const lseek = libc.func("int64_t lseek(int fd, int64_t off, int whence)");
export const eventfd = libc.func("int eventfd(unsigned int initval, int flags)");
export const timerfdCreate = libc.func("int timerfd_create(int clockid, int flags)");
export const timerfdSettime = libc.func("int timerfd_settime(int fd, int flags, const void *new_value, void *old_value)");
export const epollCreate1 = libc.func("int epoll_create1(int flags)");
export const epollCtl = libc.func("int epoll_ctl(int epfd, int op, int fd, void *event)");
export const epollWait = libc.func("int epoll_wait(int epfd, void *events, int maxevents, int timeout)");
// AF_UNIX stream sockets (the vsock device's host side). `void *addr` takes a Buffer holding a struct sockaddr.
export const socket = libc.func("int socket(int domain, int type, int protocol)");
export const bind = libc.func("int bind(int fd, const void *addr, uint32_t len)");
export const listen = libc.func("int listen(int fd, int backlog)");
export const accept4 = libc.func("int accept4(int fd, void *addr, void *len, int flags)");
export const connect = libc.func("int connect(int fd, const void *addr, uint32_t len)");
export const shutdown = libc.func("int shutdown(int fd, int how)");
export const send = libc.func("intptr_t send(int fd, const void *buf, size_t len, int flags)");
// Socket options (the tests' AF_PACKET peer sizes its receive buffer and reads its drop count).
export const setsockopt = libc.func("int setsockopt(int fd, int level, int name, const void *value, uint32_t len)");
export const getsockopt = libc.func("int getsockopt(int fd, int level, int name, void *value, void *len)");
export const getrandom = libc.func("intptr_t getrandom(void *buf, size_t len, unsigned int flags)");
export const pthreadSelf = libc.func("unsigned long pthread_self()");
export const pthreadKill = libc.func("int pthread_kill(unsigned long thread, int sig)");
export const gettid = libc.func("int gettid()");
/** The CPU-time clock of another thread of this process (a vCPU's), read with clock_gettime. */
export const pthreadGetcpuclockid = libc.func("int pthread_getcpuclockid(unsigned long thread, _Out_ int *clock_id)");
/** `tp` receives a struct timespec: two 64-bit words, seconds then nanoseconds (x86-64). */
export const clockGettime = libc.func("int clock_gettime(int clock_id, _Out_ int64_t *tp)");
export const strerror = libc.func("const char *strerror(int errnum)");

export const errno = (): number => koffi.errno();

/** A zero-copy ArrayBuffer over host memory at `addr` (at most 4 GiB: koffi's limit). */
export function view(addr: bigint, length: number): ArrayBuffer {
  if (length > 0x1_0000_0000) throw new RangeError(`koffi.view of ${length} bytes exceeds 4 GiB`);
  return koffi.view(addr as unknown as object, length);
}

/** Host address of a Buffer/TypedArray's first byte, for iovecs. */
export function addressOf(buf: Uint8Array): bigint {
  return BigInt(koffi.address(buf as unknown as object) as unknown as bigint) ;
}
export const pipe2 = libc.func("int pipe2(_Out_ int *fds, int flags)");
// seccomp and the SIGSYS handler (src/sys/seccomp), and the jailer's steps that Node has no call for.
export const prctl = libc.func("int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5)");
/** prctl with a pointer second argument (PR_SET_NAME / PR_GET_NAME). */
export const prctlPtr = libc.func("int prctl(int option, void *arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5)");
/** seccomp(2) has no glibc wrapper: syscall(SYS_seccomp, op, flags, args). */
export const seccompSyscall = libc.func("long syscall(long nr, unsigned int op, unsigned int flags, void *args)");
/** A bare system call with one integer argument (the test-only seccomp violation). */
export const syscall1 = libc.func("long syscall(long nr, unsigned long arg)");
export const sigaction = libc.func("int sigaction(int sig, const void *act, void *oldact)");
export const mprotect = libc.func("int mprotect(void *addr, size_t len, int prot)");
export const mknod = libc.func("int mknod(const char *path, uint32_t mode, uint64_t dev)");
export const setrlimit = libc.func("int setrlimit(int resource, const void *rlim)");
export const setns = libc.func("int setns(int fd, int nstype)");
export const fcntl = libc.func("int fcntl(int fd, int cmd, int arg)");
export const execve = libc.func("int execve(const char *path, const char **argv, const char **envp)");
export const setsid = libc.func("int setsid()");
export const dup2 = libc.func("int dup2(int oldfd, int newfd)");
export const unshare = libc.func("int unshare(int flags)");
export const getsid = libc.func("int getsid(int pid)");
// The jailer's pivot into the jail (Firecracker's src/jailer/src/chroot.rs) and its drop to the jailed user.
export const mount = libc.func("int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const void *data)");
export const umount2 = libc.func("int umount2(const char *target, int flags)");
export const chdir = libc.func("int chdir(const char *path)");
export const chroot = libc.func("int chroot(const char *path)");
export const mkdir = libc.func("int mkdir(const char *path, uint32_t mode)");
export const rmdir = libc.func("int rmdir(const char *path)");
/** pivot_root(2) has no glibc wrapper: syscall(SYS_pivot_root, new_root, put_old). */
export const pivotRootSyscall = libc.func("long syscall(long nr, const char *new_root, const char *put_old)");
/** glibc's setgroups/setgid/setuid change every thread of the process (its setxid broadcast), as POSIX asks. */
export const setgroups = libc.func("int setgroups(size_t size, const void *list)");
export const setgid = libc.func("int setgid(uint32_t gid)");
export const setuid = libc.func("int setuid(uint32_t uid)");
