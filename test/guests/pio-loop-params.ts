/**
 * The pio-loop guest's parameter block (see pio-loop.S): fixed guest physical addresses a benchmark
 * may poke after loading the ELF and before starting the vCPU. All fields are little-endian u64.
 */
const ENTRY = 0x100000; // long64.ld links the entry at 1 MiB

export const PIO_LOOP_PARAMS = {
  /** "PIOLOOP1": proves the block is where this file says. */
  magicAddr: ENTRY + 0x08,
  magic: "PIOLOOP1",
  /** Port writes (VM exits) to make; default 100000. */
  iterationsAddr: ENTRY + 0x10,
  /** 3 = run the loop at ring 3 (native here, ~27 µs per exit), 0 = at ring 0 (emulated, ~9 µs per exit); default 3. */
  ringAddr: ENTRY + 0x18,
  /** The I/O port written; default 0x80 (petasan's port-0x80 sink). */
  portAddr: ENTRY + 0x20,
  /** 0: the loop writes to the port; otherwise the guest physical address the loop reads 4 bytes at (an MMIO exit each). */
  mmioAddr: ENTRY + 0x28,
} as const;

/** The line pio-loop prints when its loop is over, just before it resets. */
export const PIO_LOOP_DONE_LINE = "pio-loop: done";
