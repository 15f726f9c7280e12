/**
 * Guest physical address layout of an x86-64 petasan VM.
 *
 * Low memory (below 1 MiB) holds the boot structures the VMM writes before the first vCPU
 * runs; the kernel goes at 1 MiB; device MMIO lives in the 32-bit hole [3 GiB, 4 GiB); RAM
 * that does not fit below the hole continues at 4 GiB. Addresses follow Firecracker's
 * src/vmm/src/arch/x86_64/layout.rs where it has one, so guests see a familiar machine.
 */

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

/** x86 base page size (Intel SDM vol. 3, 4.2). */
export const PAGE_SIZE = 0x1000;

// ---------------------------------------------------------------------------------------------
// Below 1 MiB: boot structures. 0..0x500 is the real-mode IVT (0..0x400) and BIOS data area
// (0x400..0x500); we keep clear of both so tiny real-mode guests still see a PC-like low page.

/** Boot GDT: the first free address after the BIOS data area (Firecracker BOOT_GDT_OFFSET). */
export const BOOT_GDT_ADDR = 0x500;
/** Room for 8 descriptors (64 bytes); the boot GDT uses 6 (a 64-bit TSS descriptor takes 2). */
export const BOOT_GDT_MAX_SIZE = 0x40;
/** Boot IDT: one zero entry right after the GDT, so an early exception triple-faults (a clean VM stop). */
export const BOOT_IDT_ADDR = BOOT_GDT_ADDR + BOOT_GDT_MAX_SIZE;
/** Size of the zeroed boot IDT (one 8-byte gate, as Firecracker's regs.rs writes). */
export const BOOT_IDT_SIZE = 8;

/** PVH struct hvm_start_info (56 bytes, start_info.h); Firecracker PVH_INFO_START. */
export const PVH_START_INFO_ADDR = 0x6000;
/** PVH module list (struct hvm_modlist_entry, 32 bytes each; the initrd is module 0); Firecracker MODLIST_START. */
export const PVH_MODLIST_ADDR = 0x6040;
/** PVH memory map (struct hvm_memmap_table_entry, 24 bytes each), below the zero page so the two never share memory. */
export const PVH_MEMMAP_ADDR = 0x6100;
/** Memory map entries (24 bytes = sizeof(struct hvm_memmap_table_entry)) that fit before the zero page at 0x7000. */
export const PVH_MEMMAP_MAX_ENTRIES = Math.floor((0x7000 - PVH_MEMMAP_ADDR) / 24);

/** struct boot_params, the "zero page" of the Linux boot protocol (zero-page.rst); Firecracker ZERO_PAGE_START. */
export const ZERO_PAGE_ADDR = 0x7000;
/** boot_params is one 4 KiB page (arch/x86/include/uapi/asm/bootparam.h). */
export const ZERO_PAGE_SIZE = PAGE_SIZE;

/** Lowest address of the boot stack page; the stack grows down from BOOT_STACK_POINTER. */
export const BOOT_STACK_BOTTOM = 0x8000;
/** Initial stack pointer: 16-byte aligned, just under the page tables (Firecracker BOOT_STACK_POINTER). */
export const BOOT_STACK_POINTER = 0x8ff0;

/** Identity-map page tables for 64-bit entry: PML4, one PDPT, then one PD per GiB (Firecracker regs.rs uses 0x9000/0xa000/0xb000). */
export const PML4_ADDR = 0x9000;
export const PDPT_ADDR = 0xa000;
export const PD_ADDR = 0xb000;
/** The boot identity map covers the first 4 GiB with 2 MiB pages: 4 page directories of 512 entries. */
export const IDENTITY_MAP_SIZE = 4 * GiB;
export const PD_COUNT = IDENTITY_MAP_SIZE / GiB;
/** First address past the page tables. */
export const PAGE_TABLES_END = PD_ADDR + PD_COUNT * PAGE_SIZE;

/** Kernel command line (Firecracker CMDLINE_START). */
export const CMDLINE_ADDR = 0x20000;
/** Default command line capacity in bytes including the NUL: x86 COMMAND_LINE_SIZE (arch/x86/include/asm/setup.h) and Firecracker CMDLINE_MAX_SIZE. */
export const CMDLINE_MAX_SIZE = 2048;
/** Room reserved at CMDLINE_ADDR: the cap for kernels whose header announces a larger cmdline_size. */
export const CMDLINE_AREA_SIZE = 0x10000;

/**
 * Start of the extended BIOS data area: the last KiB of 640 KiB of conventional memory. Linux
 * scans [639 KiB, 640 KiB) for the MP floating pointer (arch/x86/kernel/mpparse.c).
 */
export const EBDA_START = 0x9fc00;
/** The MP table starts at the EBDA, so its floating pointer lies in the scanned KiB. */
export const MPTABLE_ADDR = EBDA_START;
/** End of the system-data area that starts at the EBDA (Firecracker SYSTEM_MEM_START..RSDP_ADDR). */
export const MPTABLE_AREA_END = 0xe0000;

/** Start of "high memory" at 1 MiB: the protected-mode kernel load address of the boot protocol (boot.rst, code32_start default). */
export const HIMEM_START = 0x100000;
export const KERNEL_LOAD_ADDR = HIMEM_START;

// ---------------------------------------------------------------------------------------------
// The 32-bit MMIO hole [3 GiB, 4 GiB): no RAM there, so 32-bit-only devices and the APICs fit.

/** RAM below 4 GiB stops here; Firecracker MMIO32_MEM_START (4 GiB - 1 GiB). */
export const MMIO_HOLE_START = 3 * GiB;
/** First address that 32-bit code cannot reach. */
export const MMIO_HOLE_END = 4 * GiB;

/** Virtio-mmio device window: one 4 KiB slot per device (virtio-mmio registers end below 0x1000; Firecracker MMIO_LEN). */
export const VIRTIO_MMIO_START = 0xd000_0000;
export const VIRTIO_MMIO_DEVICE_SIZE = 0x1000;
/** 256 MiB of device slots, well below the IOAPIC. */
export const VIRTIO_MMIO_END = 0xe000_0000;

/** IOAPIC and local APIC default bases (Linux arch/x86/include/asm/apicdef.h: IO_APIC_DEFAULT_PHYS_BASE, APIC_DEFAULT_PHYS_BASE). */
export const IOAPIC_ADDR = 0xfec0_0000;
export const IOAPIC_SIZE = 0x1000;
export const LAPIC_ADDR = 0xfee0_0000;
export const LAPIC_SIZE = 0x1000;

/** Three pages for KVM_SET_TSS_ADDR (Intel VMX real-mode support), at the top of the hole (Firecracker KVM_TSS_ADDRESS). */
export const KVM_TSS_ADDR = 0xfffb_d000;
export const KVM_TSS_SIZE = 3 * PAGE_SIZE;

// ---------------------------------------------------------------------------------------------
/** Guest RAM beyond MMIO_HOLE_START bytes is mapped from 4 GiB up. */
export const HIGH_RAM_START = MMIO_HOLE_END;
