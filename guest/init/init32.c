/* init32.c - /init of the petasan default guest.
 *
 * 32-bit and libc-free on purpose: on kvm_pvm hosts (see KVM-HERE notes) 64-bit `syscall` from guest user
 * mode does not work, and 32-bit user SSE raised #UD; `int $0x80` arrives in the guest kernel as #UD and
 * guest/linux-6.1-petasan.patch turns it back into the system call. Built without x87/SSE for the same reason.
 *
 * Prints, on the console:
 *   Welcome to the petasan default guest
 *   CPUs online: <how many> (<the list in /sys/devices/system/cpu/online, e.g. "0" or "0-3">)
 *   BOOT-OK uptime=<seconds since kernel start, from /proc/uptime>
 * then, with petasan.vsock on the kernel command line, talks to the host over vsock (see vsock_demo); with
 * petasan.mmds, asks the metadata service at 169.254.169.254 for a token and a value (see mmds_demo); if it holds
 * bench.mode=idle, prints "IDLE" and sleeps 5 s; with petasan.balloon, dirties 64 MiB of memory, gives it back to
 * its kernel, prints "BALLOON-READY" and sleeps 300 s (the host inflates the balloon meanwhile); with
 * petasan.snapshot-demo, writes a file to its root disk and answers console lines (see snapshot_demo); finally reboots
 * (LINUX_REBOOT_CMD_RESTART). Booted with reboot=k the kernel restarts through the i8042 reset line, which
 * ends the VMM.
 *
 * Build: gcc -m32 -static -nostdlib -ffreestanding -fno-pic -no-pie -mgeneral-regs-only -O2 \
 *            -Wl,-e,_start -o init init32.c
 */

/* i386 system call numbers: arch/x86/entry/syscalls/syscall_32.tbl */
enum {
	SYS_read = 3,
	SYS_write = 4,
	SYS_open = 5,
	SYS_close = 6,
	SYS_sync = 36,
	SYS_mount = 21,
	SYS_brk = 45,
	SYS_fsync = 118,
	SYS_reboot = 88,
	SYS_socket = 359,
	SYS_bind = 361,
	SYS_connect = 362,
	SYS_listen = 363,
	SYS_accept4 = 364,
	SYS_setsockopt = 366,
	SYS_clock_nanosleep_time64 = 407,
};

/* include/linux/socket.h, include/uapi/linux/vm_sockets.h */
#define AF_VSOCK 40
#define SOCK_STREAM 1
#define VMADDR_CID_ANY 0xffffffffu
#define VMADDR_CID_HOST 2u
struct sockaddr_vm {
	unsigned short svm_family;
	unsigned short svm_reserved1;
	unsigned int svm_port;
	unsigned int svm_cid;
	unsigned char svm_flags;
	unsigned char svm_zero[3];
};

/* include/uapi/linux/in.h, include/uapi/asm-generic/socket.h (64-bit timeval options) */
#define AF_INET 2
#define SOL_SOCKET 1
#define SO_RCVTIMEO_NEW 66
#define SO_SNDTIMEO_NEW 67
struct sockaddr_in {
	unsigned short sin_family;
	unsigned short sin_port; /* network byte order */
	unsigned int sin_addr;   /* network byte order */
	unsigned char sin_zero[8];
};

/* include/uapi/linux/reboot.h */
#define LINUX_REBOOT_MAGIC1 0xfee1dead
#define LINUX_REBOOT_MAGIC2 672274793
#define LINUX_REBOOT_CMD_RESTART 0x01234567

/* include/uapi/asm-generic/fcntl.h (octal) */
#define O_WRONLY 01
#define O_CREAT 0100
#define O_TRUNC 01000

/* include/uapi/linux/time.h */
#define CLOCK_MONOTONIC 1

static inline int sys(int n, int a, int b, int c, int d, int e) {
	int r;
	__asm__ volatile("int $0x80" : "=a"(r) : "a"(n), "b"(a), "c"(b), "d"(c), "S"(d), "D"(e) : "memory");
	return r;
}

static int slen(const char *s) { int n = 0; while (s[n]) n++; return n; }

static void out(const char *s) { sys(SYS_write, 1, (int)s, slen(s), 0, 0); }

/* Reads up to max-1 bytes of the file at p into buf, NUL-terminated; an unreadable file reads as "". */
static int readfile(const char *p, char *buf, int max) {
	int fd = sys(SYS_open, (int)p, 0 /* O_RDONLY */, 0, 0, 0), n;
	buf[0] = 0;
	if (fd < 0) return 0;
	n = sys(SYS_read, fd, (int)buf, max - 1, 0, 0);
	sys(SYS_close, fd, 0, 0, 0, 0);
	if (n < 0) n = 0;
	buf[n] = 0;
	return n;
}

/* Cuts s at the first character c or newline. */
static void cut(char *s, char c) {
	int i;
	for (i = 0; s[i] && s[i] != c && s[i] != '\n'; i++) ;
	s[i] = 0;
}

/* How many CPUs a kernel cpu list names ("0", "0-3", "0-1,4"): Documentation/admin-guide/cputopology.rst. */
static int cpu_count(const char *list) {
	int count = 0, first = -1, n = -1;
	for (;; list++) {
		char c = *list;
		if (c >= '0' && c <= '9') { n = (n < 0 ? 0 : n * 10) + (c - '0'); continue; }
		if (c == '-') { first = n; n = -1; continue; }
		if (n >= 0) count += first >= 0 && first <= n ? n - first + 1 : 1;
		first = -1; n = -1;
		if (c == 0) return count;
	}
}

static void out_int(int v) {
	char d[12];
	int i = sizeof d - 1;
	d[i] = 0;
	do { d[--i] = '0' + v % 10; v /= 10; } while (v && i > 0);
	out(d + i);
}

static void write_str(int fd, const char *s) { sys(SYS_write, fd, (int)s, slen(s), 0, 0); }

/* Reads from fd until a newline (kept) or end of stream; NUL-terminates. */
static int read_line(int fd, char *buf, int max) {
	int used = 0, n;
	while (used < max - 1) {
		n = sys(SYS_read, fd, (int)(buf + used), 1, 0, 0);
		if (n <= 0) break;
		if (buf[used++] == '\n') break;
	}
	buf[used] = 0;
	return used;
}

/*
 * Proves virtio-vsock both ways (petasan.vsock on the command line): connects to the host's port 5000, sends a
 * line and prints the host's answer; then listens on port 5001, prints VSOCK-LISTENING, and answers the first
 * connection's line with "guest heard: <line>".
 */
static void vsock_demo(void) {
	char line[128], reply[160];
	struct sockaddr_vm a = { AF_VSOCK, 0, 5000, VMADDR_CID_HOST, 0, { 0 } };
	int s = sys(SYS_socket, AF_VSOCK, SOCK_STREAM, 0, 0, 0), l, c, i, j;

	if (s >= 0 && sys(SYS_connect, s, (int)&a, sizeof a, 0, 0) == 0) {
		write_str(s, "hello from the guest\n");
		read_line(s, line, sizeof line);
		out("vsock-reply="); out(line);
	} else out("vsock-connect=failed\n");
	if (s >= 0) sys(SYS_close, s, 0, 0, 0, 0);

	a.svm_port = 5001;
	a.svm_cid = VMADDR_CID_ANY;
	l = sys(SYS_socket, AF_VSOCK, SOCK_STREAM, 0, 0, 0);
	if (l < 0 || sys(SYS_bind, l, (int)&a, sizeof a, 0, 0) != 0 || sys(SYS_listen, l, 1, 0, 0, 0) != 0) {
		out("vsock-listen=failed\n");
		return;
	}
	out("VSOCK-LISTENING\n");
	c = sys(SYS_accept4, l, 0, 0, 0, 0);
	if (c >= 0) {
		read_line(c, line, sizeof line);
		for (i = 0; "guest heard: "[i]; i++) reply[i] = "guest heard: "[i];
		for (j = 0; line[j] && i < (int)sizeof reply - 1; j++) reply[i++] = line[j];
		reply[i] = 0;
		write_str(c, reply);
		sys(SYS_close, c, 0, 0, 0, 0);
	}
	sys(SYS_close, l, 0, 0, 0, 0);
}

/*
 * One HTTP exchange with the metadata service (Firecracker's MMDS, 169.254.169.254:80): sends req, reads the
 * answer until the server closes (the requests say "Connection: close"), NUL-terminated; -1 if it failed. Send
 * and receive time out after 10 s (SO_SNDTIMEO also bounds connect), so a missing service cannot hang init.
 */
static int mmds_exchange(const char *req, char *resp, int max) {
	struct sockaddr_in a = { AF_INET, 80 << 8, 169 | 254 << 8 | 169 << 16 | 254u << 24, { 0 } };
	long long tv[2] = { 10, 0 };
	int s = sys(SYS_socket, AF_INET, SOCK_STREAM, 0, 0, 0), used = 0, n;
	resp[0] = 0;
	if (s < 0) return -1;
	sys(SYS_setsockopt, s, SOL_SOCKET, SO_RCVTIMEO_NEW, (int)tv, sizeof tv);
	sys(SYS_setsockopt, s, SOL_SOCKET, SO_SNDTIMEO_NEW, (int)tv, sizeof tv);
	if (sys(SYS_connect, s, (int)&a, sizeof a, 0, 0) != 0) { sys(SYS_close, s, 0, 0, 0, 0); return -1; }
	write_str(s, req);
	while (used < max - 1 && (n = sys(SYS_read, s, (int)(resp + used), max - 1 - used, 0, 0)) > 0) used += n;
	resp[used] = 0;
	sys(SYS_close, s, 0, 0, 0, 0);
	return used;
}

/* The body of an HTTP response: what follows the blank line ("" if there is none). */
static char *http_body(char *resp) {
	for (; *resp; resp++) if (resp[0] == '\r' && resp[1] == '\n' && resp[2] == '\r' && resp[3] == '\n') return resp + 4;
	return resp;
}

static void append(char *dst, int max, const char *s) {
	int i = slen(dst);
	while (*s && i < max - 1) dst[i++] = *s++;
	dst[i] = 0;
}

/*
 * Proves MMDS (petasan.mmds on the command line): the V2 flow, a session token from PUT /latest/api/token then
 * GET /latest/meta-data/ami-id with it, printed as "mmds=<value>"; then a GET without a token (the V1 way),
 * printed as "mmds-v1=<status line>" (a V2 service answers 401).
 */
static void mmds_demo(void) {
	char resp[512], token[96], req[256];
	req[0] = 0;
	if (mmds_exchange("PUT /latest/api/token HTTP/1.1\r\nHost: 169.254.169.254\r\nX-metadata-token-ttl-seconds: 60\r\n"
			  "Connection: close\r\n\r\n", resp, sizeof resp) < 0) {
		out("mmds=connect-failed\n");
		return;
	}
	token[0] = 0;
	append(token, sizeof token, http_body(resp));
	cut(token, '\r');
	append(req, sizeof req, "GET /latest/meta-data/ami-id HTTP/1.1\r\nHost: 169.254.169.254\r\nX-metadata-token: ");
	append(req, sizeof req, token);
	append(req, sizeof req, "\r\nConnection: close\r\n\r\n");
	mmds_exchange(req, resp, sizeof resp);
	out("mmds="); out(http_body(resp)); out("\n");
	mmds_exchange("GET /latest/meta-data/ami-id HTTP/1.1\r\nHost: 169.254.169.254\r\nConnection: close\r\n\r\n", resp, sizeof resp);
	cut(resp, '\r');
	out("mmds-v1="); out(resp); out("\n");
}

/*
 * petasan.vsock-echo (bench/vsock.ts): listens on vsock port 5002, prints VSOCK-ECHO-READY, and sends back every
 * byte of the first connection until the host closes it.
 */
static void vsock_echo(void) {
	static char buf[16384];
	struct sockaddr_vm a = { AF_VSOCK, 0, 5002, VMADDR_CID_ANY, 0, { 0 } };
	int l = sys(SYS_socket, AF_VSOCK, SOCK_STREAM, 0, 0, 0), c, n, off, w;

	if (l < 0 || sys(SYS_bind, l, (int)&a, sizeof a, 0, 0) != 0 || sys(SYS_listen, l, 1, 0, 0, 0) != 0) {
		out("vsock-echo=failed\n");
		return;
	}
	out("VSOCK-ECHO-READY\n");
	c = sys(SYS_accept4, l, 0, 0, 0, 0);
	while (c >= 0 && (n = sys(SYS_read, c, (int)buf, sizeof buf, 0, 0)) > 0) {
		for (off = 0; off < n; off += w) {
			w = sys(SYS_write, c, (int)(buf + off), n - off, 0, 0);
			if (w <= 0) { n = -1; break; }
		}
		if (n < 0) break;
	}
	if (c >= 0) sys(SYS_close, c, 0, 0, 0, 0);
	sys(SYS_close, l, 0, 0, 0, 0);
	out("VSOCK-ECHO-DONE\n");
}

/* The first field of /proc/uptime (seconds since boot, two decimals) into up. */
static void uptime(char *up, int max) {
	readfile("/proc/uptime", up, max);
	cut(up, ' ');
}

#define DEMO_FILE "/snapshot-demo.txt"

/*
 * Proves snapshot and restore of a Linux guest (petasan.snapshot-demo on the command line, with a writable root
 * file system): writes DEMO_FILE ("written at uptime=<s>") to the root disk, fsyncs and syncs it, prints
 * "SNAPSHOT-DEMO-READY uptime=<s>", then answers each line read from the console with
 * "ANSWER line=<line> uptime=<s> file=<DEMO_FILE's first line>", reading the file after dropping the page cache
 * (so from the disk, through virtio-blk, after a restore). The line "reboot" ends the loop (and the guest).
 * The host snapshots the guest while it waits in read(), kills the VMM, restores it elsewhere and writes a line.
 */
static void snapshot_demo(void) {
	char up[64], line[128], file[128];
	int fd;

	uptime(up, sizeof up);
	fd = sys(SYS_open, (int)DEMO_FILE, O_WRONLY | O_CREAT | O_TRUNC, 0644, 0, 0);
	if (fd < 0) { out("snapshot-demo: cannot create " DEMO_FILE "\n"); return; }
	write_str(fd, "written at uptime="); write_str(fd, up); write_str(fd, "\n");
	sys(SYS_fsync, fd, 0, 0, 0, 0);
	sys(SYS_close, fd, 0, 0, 0, 0);
	sys(SYS_sync, 0, 0, 0, 0, 0);
	out("SNAPSHOT-DEMO-READY uptime="); out(up); out("\n");

	/* fd 0 is /dev/console (ttyS0), opened by the kernel before init runs; canonical mode: read() gives a line. */
	while (read_line(0, line, sizeof line) > 0) {
		cut(line, '\r');
		/* "3": free the page cache, dentries and inodes (Documentation/admin-guide/sysctl/vm.rst, drop_caches). */
		fd = sys(SYS_open, (int)"/proc/sys/vm/drop_caches", O_WRONLY, 0, 0, 0);
		if (fd >= 0) { write_str(fd, "3"); sys(SYS_close, fd, 0, 0, 0, 0); }
		if (readfile(DEMO_FILE, file, sizeof file) == 0) { file[0] = '-'; file[1] = 0; }
		cut(file, 0);
		uptime(up, sizeof up);
		out("ANSWER line="); out(line); out(" uptime="); out(up); out(" file="); out(file); out("\n");
		if (line[0] == 'r' && line[1] == 'e' && line[2] == 'b' && line[3] == 'o' && line[4] == 'o' && line[5] == 't' && !line[6]) return;
	}
}

static int has(const char *h, const char *n) {
	for (; *h; h++) { int i = 0; while (n[i] && h[i] == n[i]) i++; if (!n[i]) return 1; }
	return 0;
}

void _start(void) {
	char up[64], cpus[64], cmd[1024], msg[256];

	sys(SYS_mount, (int)"proc", (int)"/proc", (int)"proc", 0, 0);
	sys(SYS_mount, (int)"sysfs", (int)"/sys", (int)"sysfs", 0, 0);

	out("Welcome to the petasan default guest\n");

	readfile("/sys/devices/system/cpu/online", cpus, sizeof cpus);
	cut(cpus, ' ');
	/* The count first: a bare list such as "0" reads as "zero CPUs". */
	out("CPUs online: "); out_int(cpu_count(cpus)); out(" ("); out(cpus); out(")\n");

	readfile("/proc/uptime", up, sizeof up);
	cut(up, ' ');
	out("BOOT-OK uptime="); out(up); out("\n");

	/* A root file system can carry a message for the host to see (tests put one on an ext4 image). */
	if (readfile("/etc/petasan-message", msg, sizeof msg) > 0) {
		cut(msg, 0);
		out("message="); out(msg); out("\n");
	}

	readfile("/proc/cmdline", cmd, sizeof cmd);
	if (has(cmd, "petasan.hwrng")) {
		/* Proves the entropy device: 8 bytes from the virtio-rng driver's /dev/hwrng, in hex. */
		unsigned char r[8];
		int fd, i, n = -1;
		sys(SYS_mount, (int)"devtmpfs", (int)"/dev", (int)"devtmpfs", 0, 0);
		fd = sys(SYS_open, (int)"/dev/hwrng", 0 /* O_RDONLY */, 0, 0, 0);
		if (fd >= 0) { n = sys(SYS_read, fd, (int)r, sizeof r, 0, 0); sys(SYS_close, fd, 0, 0, 0, 0); }
		out("hwrng=");
		if (n == (int)sizeof r) {
			char hex[17];
			for (i = 0; i < 8; i++) { hex[2 * i] = "0123456789abcdef"[r[i] >> 4]; hex[2 * i + 1] = "0123456789abcdef"[r[i] & 15]; }
			hex[16] = 0;
			out(hex);
		} else out("unavailable");
		out("\n");
	}
	if (has(cmd, "petasan.vsock-echo")) vsock_echo();
	else if (has(cmd, "petasan.vsock")) vsock_demo();
	if (has(cmd, "petasan.mmds")) mmds_demo();
	if (has(cmd, "petasan.balloon")) {
		/* Guest pages the host has backed (written) and the guest has freed: what a balloon should hand back. */
		long long ts[2] = {300, 0};
		char *start = (char *)sys(SYS_brk, 0, 0, 0, 0, 0), *p;
		char *end = (char *)sys(SYS_brk, (int)(start + (64 << 20)), 0, 0, 0, 0);
		for (p = start; p + 4096 <= end; p += 4096) *(volatile char *)p = 1;
		sys(SYS_brk, (int)start, 0, 0, 0, 0);
		out("BALLOON-READY\n");
		sys(SYS_clock_nanosleep_time64, CLOCK_MONOTONIC, 0, (int)ts, 0, 0);
	}
	if (has(cmd, "petasan.snapshot-demo")) snapshot_demo();
	if (has(cmd, "bench.mode=idle")) {
		long long ts[2] = {5, 0}; /* 64-bit timespec: the kernel is built without COMPAT_32BIT_TIME */
		out("IDLE\n");
		sys(SYS_clock_nanosleep_time64, CLOCK_MONOTONIC, 0, (int)ts, 0, 0);
	}

	sys(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_RESTART, 0, 0);
	for (;;) ;
}
