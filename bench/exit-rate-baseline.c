/* exit-rate-baseline: the C side of bench/exit-rate.ts. A minimal KVM program that runs the same
 * pio-loop ELF as petasan, in the same machine and entry state, and times its port-I/O exits.
 *
 * Usage: exit-rate-baseline <pio-loop.elf> <guest-mem-mib> <counted-port-or-mmio-address>
 * Prints one line: exits=<N> elapsed_ns=<T> cpu_ns=<C>
 *   N = OUT exits to <counted-port> (the guest's loop), or MMIO exits at the counted address when it is
 *   above 0xffff (the loop's 4-byte reads; each answered with 0, like an idle InterruptStatus), T = time from the first of them to the first
 *   exit that follows the loop, i.e. N full exit round trips, measured with CLOCK_MONOTONIC; C = the
 *   process's user + system CPU time over the same stretch (getrusage).
 *
 * What it replicates from petasan (so that only the run loop differs):
 *   - VM: KVM_SET_TSS_ADDR, KVM_SET_IDENTITY_MAP_ADDR, in-kernel irqchip and PIT (src/vmm/builder.ts).
 *   - RAM at guest address 0 in one slot, MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE (src/memory/host-mapping.ts).
 *   - ELF64 PT_LOAD segments at p_paddr; the boot GDT at 0x500, an empty IDT at 0x540, identity page
 *     tables for the first 4 GiB at 0x9000 (PML4), 0xa000 (PDPT), 0xb000.. (4 PDs of 2 MiB pages), stack
 *     at 0x8ff0, rsi = 0x7000 (src/arch/x86/{layout,gdt,page-tables}.ts, src/boot/loader.ts).
 *   - Long-mode entry registers: CR0 = PE|ET|PG, CR4 = PAE, EFER = LME|LMA, CS 0x10, data 0x18, busy
 *     TSS 0x20 (src/vmm/vcpu-setup.ts); CPUID = KVM_GET_SUPPORTED_CPUID. petasan also sets MSRs, FPU and
 *     LAPIC LINTs: irrelevant to an OUT loop with interrupts off, so left out.
 * Devices, served inline on this thread: the counted port (a sink; port 0x3ff keeps its byte, like the
 * 16550 scratch register), COM1 LSR reads answer "transmitter empty", COM1 THR writes are dropped, and
 * 0xfe written to the i8042 command port 0x64 (reset) ends the run. Any other read gives all ones.
 * Build: cc -O2 -o exit-rate-baseline exit-rate-baseline.c */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Guest physical layout: src/arch/x86/layout.ts. */
#define KVM_TSS_ADDR 0xfffbd000ULL
#define KVM_IDENTITY_MAP_ADDR (KVM_TSS_ADDR - 0x1000)
#define BOOT_GDT_ADDR 0x500
#define BOOT_IDT_ADDR 0x540
#define BOOT_IDT_SIZE 8
#define ZERO_PAGE_ADDR 0x7000
#define BOOT_STACK_POINTER 0x8ff0
#define PML4_ADDR 0x9000
#define PDPT_ADDR 0xa000
#define PD_ADDR 0xb000
#define PD_COUNT 4 /* 4 GiB identity map, one page directory per GiB */
#define PAGE_SIZE 0x1000

/* Boot GDT selectors and descriptors (src/arch/x86/gdt.ts; Intel SDM vol. 3, 3.4.5). */
#define BOOT_CS64_SELECTOR 0x10
#define BOOT_DS_SELECTOR 0x18
#define BOOT_TSS_SELECTOR 0x20
#define DESC_CODE32 0x00cf9b000000ffffULL /* flat 32-bit code, G=1 D=1 */
#define DESC_CODE64 0x00af9b000000ffffULL /* flat 64-bit code, G=1 L=1 */
#define DESC_DATA 0x00cf93000000ffffULL   /* flat data, G=1 B=1 */
#define DESC_TSS_BUSY 0x00008b0000000067ULL /* base 0, limit 0x67 (104-byte TSS), busy 64-bit TSS */

/* Paging-structure entry bits (SDM vol. 3, tables 4-15..4-18). */
#define PTE_PRESENT 1ULL
#define PTE_WRITABLE 2ULL
#define PDE_2M_PAGE 0x80ULL

/* Control register and EFER bits (SDM vol. 3A, 2.5 and 2.2.1). */
#define CR0_PE (1ULL << 0)
#define CR0_ET (1ULL << 4)
#define CR0_PG (1ULL << 31)
#define CR4_PAE (1ULL << 5)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)

/* Legacy ports the guest touches after its loop (16550 datasheet; i8042). */
#define COM1_THR 0x3f8
#define COM1_LSR 0x3fd
#define COM1_SCRATCH 0x3ff
#define LSR_THRE_TEMT 0x60
#define I8042_COMMAND 0x64
#define I8042_CMD_RESET 0xfe

#define MAX_CPUID_ENTRIES 256
#define WATCHDOG_SECONDS 300

static void die(const char *what) {
	fprintf(stderr, "exit-rate-baseline: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void fail(const char *message) {
	fprintf(stderr, "exit-rate-baseline: %s\n", message);
	exit(1);
}

static int xioctl(int fd, unsigned long request, void *arg, const char *name) {
	int r = ioctl(fd, request, arg);
	if (r < 0) die(name);
	return r;
}

static uint8_t *read_file(const char *path, size_t *size) {
	int fd = open(path, O_RDONLY);
	if (fd < 0) die(path);
	struct stat st;
	if (fstat(fd, &st) < 0) die(path);
	uint8_t *bytes = malloc(st.st_size ? st.st_size : 1);
	if (!bytes) fail("out of memory reading the ELF");
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, bytes + got, st.st_size - got);
		if (n <= 0) die(path);
		got += n;
	}
	close(fd);
	*size = got;
	return bytes;
}

/* Copies every PT_LOAD segment to p_paddr and zeroes its bss; returns e_entry. */
static uint64_t load_elf64(const uint8_t *file, size_t size, uint8_t *ram, uint64_t ram_size) {
	const Elf64_Ehdr *eh = (const void *)file;
	if (size < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0) fail("not an ELF file");
	if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_X86_64) fail("not an x86-64 ELF64 file");
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff > size ||
	    (size - eh->e_phoff) / sizeof(Elf64_Phdr) < eh->e_phnum)
		fail("ELF program headers lie outside the file");
	const Elf64_Phdr *ph = (const void *)(file + eh->e_phoff);
	for (int i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type != PT_LOAD) continue;
		if (ph[i].p_filesz > ph[i].p_memsz || ph[i].p_offset > size || size - ph[i].p_offset < ph[i].p_filesz)
			fail("a PT_LOAD segment's file bytes lie outside the file");
		if (ph[i].p_paddr > ram_size || ram_size - ph[i].p_paddr < ph[i].p_memsz)
			fail("a PT_LOAD segment lies outside guest RAM");
		memcpy(ram + ph[i].p_paddr, file + ph[i].p_offset, ph[i].p_filesz);
		memset(ram + ph[i].p_paddr + ph[i].p_filesz, 0, ph[i].p_memsz - ph[i].p_filesz);
	}
	return eh->e_entry;
}

static void write_boot_tables(uint8_t *ram) {
	uint64_t *gdt = (void *)(ram + BOOT_GDT_ADDR);
	gdt[0] = 0;
	gdt[1] = DESC_CODE32;
	gdt[2] = DESC_CODE64;
	gdt[3] = DESC_DATA;
	gdt[4] = DESC_TSS_BUSY;
	gdt[5] = 0; /* upper half of the 16-byte TSS descriptor */
	memset(ram + BOOT_IDT_ADDR, 0, BOOT_IDT_SIZE);

	uint64_t *pml4 = (void *)(ram + PML4_ADDR), *pdpt = (void *)(ram + PDPT_ADDR), *pd = (void *)(ram + PD_ADDR);
	pml4[0] = PDPT_ADDR | PTE_PRESENT | PTE_WRITABLE;
	for (int gib = 0; gib < PD_COUNT; gib++) pdpt[gib] = (PD_ADDR + gib * PAGE_SIZE) | PTE_PRESENT | PTE_WRITABLE;
	for (uint64_t i = 0; i < PD_COUNT * 512; i++) pd[i] = (i << 21) | PTE_PRESENT | PTE_WRITABLE | PDE_2M_PAGE;
}

static void set_entry_state(int vcpu, uint64_t entry) {
	struct kvm_sregs s;
	xioctl(vcpu, KVM_GET_SREGS, &s, "KVM_GET_SREGS");
	struct kvm_segment code = {.base = 0, .limit = 0xffffffff, .selector = BOOT_CS64_SELECTOR, .type = 0xb,
				   .present = 1, .s = 1, .l = 1, .g = 1};
	struct kvm_segment data = {.base = 0, .limit = 0xffffffff, .selector = BOOT_DS_SELECTOR, .type = 0x3,
				   .present = 1, .s = 1, .db = 1, .g = 1};
	struct kvm_segment tss = {.base = 0, .limit = 0x67, .selector = BOOT_TSS_SELECTOR, .type = 0xb, .present = 1};
	struct kvm_segment ldt = {.unusable = 1};
	s.cs = code;
	s.ds = s.es = s.fs = s.gs = s.ss = data;
	s.tr = tss;
	s.ldt = ldt;
	s.gdt.base = BOOT_GDT_ADDR;
	s.gdt.limit = 6 * 8 - 1;
	s.idt.base = BOOT_IDT_ADDR;
	s.idt.limit = BOOT_IDT_SIZE - 1;
	s.cr0 = CR0_PE | CR0_ET | CR0_PG;
	s.cr3 = PML4_ADDR;
	s.cr4 = CR4_PAE;
	s.efer = EFER_LME | EFER_LMA;
	xioctl(vcpu, KVM_SET_SREGS, &s, "KVM_SET_SREGS");
	struct kvm_regs r = {.rip = entry, .rsp = BOOT_STACK_POINTER, .rbp = BOOT_STACK_POINTER,
			     .rsi = ZERO_PAGE_ADDR, .rflags = 2};
	xioctl(vcpu, KVM_SET_REGS, &r, "KVM_SET_REGS");
}

static void set_supported_cpuid(int kvm, int vcpu) {
	struct kvm_cpuid2 *cpuid = calloc(1, sizeof *cpuid + MAX_CPUID_ENTRIES * sizeof(struct kvm_cpuid_entry2));
	if (!cpuid) fail("out of memory for CPUID");
	cpuid->nent = MAX_CPUID_ENTRIES;
	xioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid, "KVM_GET_SUPPORTED_CPUID");
	xioctl(vcpu, KVM_SET_CPUID2, cpuid, "KVM_SET_CPUID2");
	free(cpuid);
}

static uint64_t now_ns(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ULL + t.tv_nsec;
}

static uint64_t cpu_ns(void) {
	struct rusage u;
	getrusage(RUSAGE_SELF, &u);
	return (uint64_t)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1000000000ULL +
	       (uint64_t)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1000ULL;
}

int main(int argc, char **argv) {
	if (argc != 4) fail("usage: exit-rate-baseline <pio-loop.elf> <guest-mem-mib> <counted-port>");
	char *end;
	uint64_t mem_mib = strtoull(argv[2], &end, 0);
	if (*end || mem_mib < 2 || mem_mib > 3072) fail("guest memory must be 2..3072 MiB (one slot below the MMIO hole)");
	unsigned long counted_port = strtoul(argv[3], &end, 0);
	if (*end) fail("the counted port or MMIO address must be a number");
	uint64_t ram_size = mem_mib << 20;
	size_t elf_size;
	uint8_t *elf = read_file(argv[1], &elf_size);
	alarm(WATCHDOG_SECONDS); /* a guest that never resets must not hang the benchmark */

	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) die("/dev/kvm");
	if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) fail("unexpected KVM API version");
	int vm = xioctl(kvm, KVM_CREATE_VM, 0, "KVM_CREATE_VM");
	if (ioctl(vm, KVM_SET_TSS_ADDR, KVM_TSS_ADDR) < 0) die("KVM_SET_TSS_ADDR");
	uint64_t identity_map = KVM_IDENTITY_MAP_ADDR;
	xioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, &identity_map, "KVM_SET_IDENTITY_MAP_ADDR");
	xioctl(vm, KVM_CREATE_IRQCHIP, 0, "KVM_CREATE_IRQCHIP");
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	xioctl(vm, KVM_CREATE_PIT2, &pit, "KVM_CREATE_PIT2");

	uint8_t *ram = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ram == MAP_FAILED) die("mmap guest RAM");
	struct kvm_userspace_memory_region region = {.slot = 0, .guest_phys_addr = 0, .memory_size = ram_size,
						     .userspace_addr = (uint64_t)ram};
	xioctl(vm, KVM_SET_USER_MEMORY_REGION, &region, "KVM_SET_USER_MEMORY_REGION");
	uint64_t entry = load_elf64(elf, elf_size, ram, ram_size);
	write_boot_tables(ram);

	int vcpu = xioctl(vm, KVM_CREATE_VCPU, 0, "KVM_CREATE_VCPU");
	int run_size = xioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0, "KVM_GET_VCPU_MMAP_SIZE");
	struct kvm_run *run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED) die("mmap kvm_run");
	set_supported_cpuid(kvm, vcpu);
	set_entry_state(vcpu, entry);

	uint64_t exits = 0, first_ns = 0, loop_end_ns = 0, first_cpu_ns = 0, loop_end_cpu_ns = 0;
	uint8_t scratch = 0;
	for (;;) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) continue;
			die("KVM_RUN");
		}
		if (run->exit_reason == KVM_EXIT_MMIO && run->mmio.phys_addr == counted_port && !loop_end_ns) {
			if (exits++ == 0) {
				first_ns = now_ns();
				first_cpu_ns = cpu_ns();
			}
			if (!run->mmio.is_write) memset(run->mmio.data, 0, sizeof run->mmio.data);
			continue;
		}
		if (run->exit_reason != KVM_EXIT_IO) {
			fprintf(stderr, "exit-rate-baseline: unexpected exit reason %u\n", run->exit_reason);
			return 1;
		}
		uint8_t *data = (uint8_t *)run + run->io.data_offset;
		uint16_t port = run->io.port;
		int out = run->io.direction == KVM_EXIT_IO_OUT;
		if (out && port == counted_port && !loop_end_ns) {
			if (exits++ == 0) {
				first_ns = now_ns();
				first_cpu_ns = cpu_ns();
			}
			if (port == COM1_SCRATCH) scratch = data[0];
			continue;
		}
		if (exits && !loop_end_ns) {
			loop_end_ns = now_ns();
			loop_end_cpu_ns = cpu_ns();
		}
		if (out && port == I8042_COMMAND && data[0] == I8042_CMD_RESET) break;
		if (!out) memset(data, port == COM1_LSR ? LSR_THRE_TEMT : 0xff, (size_t)run->io.size * run->io.count);
		else if (port != COM1_THR && port != COM1_SCRATCH && port != counted_port) {
			fprintf(stderr, "exit-rate-baseline: unexpected OUT to port 0x%x\n", port);
			return 1;
		}
	}
	(void)scratch;
	printf("exits=%llu elapsed_ns=%llu cpu_ns=%llu\n", (unsigned long long)exits,
	       (unsigned long long)(loop_end_ns ? loop_end_ns - first_ns : 0),
	       (unsigned long long)(loop_end_ns ? loop_end_cpu_ns - first_cpu_ns : 0));
	return 0;
}
