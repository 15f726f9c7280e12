/**
 * PIO exits per second: petasan's TypeScript run loop against a minimal C KVM loop, on the same guest
 * in the same run, as a ratio (goal: petasan >= 0.9 of C).
 *
 *   node dist/bench/exit-rate.js [--iterations N] [--runs N]
 *
 * The guest is test/guests/pio-loop.S: a loop of N `out` instructions, each a VM exit, then a line on
 * COM1 and a reset through the i8042. Both sides load the same patched ELF (pio-loop-image.ts) into
 * the same machine state (exit-rate-baseline.c says how it mirrors petasan's builder), and time the
 * same stretch of steady state: the C side from the loop's first exit to its end, petasan from a quarter into it (its JIT
 * warm-up left out, see petasan-exit-rate.ts), with start-up and teardown outside the window
 * (petasan-exit-rate.ts says how petasan's side is sampled). Three cases, all served on the vCPU thread that
 * exited (src/vmm/vcpu/registers.ts):
 *   - port 0x80, the stateless io_delay port: the bare run-loop cost;
 *   - port 0x3ff, COM1's scratch register: a device register in the UART's shared register file, under its lock;
 *   - a 4-byte read of a virtio-mmio transport's InterruptStatus (the entropy device's, at its window's base):
 *     the register every virtio interrupt makes the driver read;
 * each with the loop at ring 3 (native on a host with VT-x/AMD-V and here) and ring 0 (emulated on
 * this machine's nested kvm_pvm: see /work/shared/KVM-HERE.md). The C program serves every access
 * inline, so the ratios are what petasan's loop and device model cost against a single-threaded VMM.
 * Runs alternate sides (petasan first, then C first); medians are printed, and the ratio is the median
 * over back-to-back pairs, which resists load from other processes on the machine best.
 */
import { buildCBaseline, runCBaseline, type ExitTiming } from "./c-baseline.js";
import { measurePetasanExitRate } from "./petasan-exit-rate.js";
import { pioLoopImage } from "./pio-loop-image.js";
import { kvmUnavailableReason } from "./kvm-check.js";
import { formatTable, intOption, median } from "./stats.js";
import type { ExitCounter } from "../src/vmm/vcpu/control.js";
import { POST_CODE_PORT } from "../src/devices/legacy/sink.js";
import { VIRTIO_MMIO_START } from "../src/arch/x86/layout.js";

/** Guest RAM for both sides; the loop touches a few pages of it. */
const MEM_MIB = 128;
/** COM1 base 0x3f8 + the 16550's scratch register (offset 7): a UART register with no side effects. */
const COM1_SCRATCH_PORT = 0x3ff;
/** InterruptStatus (virtio 1.2 §4.2.2, offset 0x60) of the first virtio-mmio device: the entropy device, the VM's only one. */
const VIRTIO_INTERRUPT_STATUS = VIRTIO_MMIO_START + 0x60;

interface Case {
  label: string;
  port: number;
  /** The loop reads this MMIO address instead of writing to `port`. */
  mmio?: number;
  counter: ExitCounter;
  ring: 0 | 3;
}

const CASES: Case[] = ([3, 0] as const).flatMap((ring) => [
  { label: "port 0x80 (io_delay)", port: POST_CODE_PORT, counter: "io_out", ring },
  { label: "port 0x3ff (UART scratch)", port: COM1_SCRATCH_PORT, counter: "io_out", ring },
  { label: "virtio-mmio InterruptStatus", port: POST_CODE_PORT, mmio: VIRTIO_INTERRUPT_STATUS, counter: "mmio_read", ring },
] satisfies Case[]);

const perSecond = (t: ExitTiming) => t.exits / (t.elapsedNs / 1e9);
const rate = (n: number) => Math.round(n).toLocaleString("en-US");
const micros = (perSec: number) => (1e6 / perSec).toFixed(1);

async function main(argv: string[]): Promise<void> {
  const unavailable = kvmUnavailableReason();
  if (unavailable) {
    console.log(`exit-rate: skipped, ${unavailable}`);
    return;
  }
  const iterations = intOption(argv, "iterations", 100_000);
  const runs = intOption(argv, "runs", 5);
  const baseline = await buildCBaseline();

  const rows = [["case", "ring", "petasan exits/s", "C exits/s", "ratio", "petasan us/exit", "C us/exit", "petasan CPU us/exit", "C CPU us/exit", "CPU x C"]];
  const details: string[] = [];
  for (const c of CASES) {
    const elf = await pioLoopImage({ iterations, ring: c.ring, port: c.port, mmio: c.mmio });
    const petasan: ExitTiming[] = [];
    const native: ExitTiming[] = [];
    const measurePetasan = async () => petasan.push(await measurePetasanExitRate({ elf, memMib: MEM_MIB, iterations, counter: c.counter, entropy: c.mmio !== undefined }));
    const measureC = async () => native.push(await runCBaseline(baseline, elf, MEM_MIB, c.mmio ?? c.port));
    for (let i = 0; i < runs; i++) {
      // Alternate which side goes first, so drift on a shared machine favours neither.
      if (i % 2 === 0) {
        await measurePetasan();
        await measureC();
      } else {
        await measureC();
        await measurePetasan();
      }
    }
    // Each pair ran back to back, so its ratio is the least disturbed by other load on the machine.
    const ratio = median(petasan.map((p, i) => perSecond(p) / perSecond(native[i])));
    const p = median(petasan.map(perSecond));
    const n = median(native.map(perSecond));
    const cpu = (ts: ExitTiming[]) => median(ts.map((t) => t.cpuNs / t.exits)) / 1000;
    rows.push([c.label, String(c.ring), rate(p), rate(n), ratio.toFixed(2), micros(p), micros(n), cpu(petasan).toFixed(1), cpu(native).toFixed(1), (cpu(petasan) / cpu(native)).toFixed(2)]);
    details.push(`  ${c.label}, ring ${c.ring}: petasan ${petasan.map((t) => rate(perSecond(t))).join(", ")}; C ${native.map((t) => rate(perSecond(t))).join(", ")}`);
  }
  console.log(`Register exit rate, ${iterations} exits per run, ${runs} runs per side; medians; ratio = median of petasan/C over back-to-back pairs (goal >= 0.9); CPU x C = CPU per exit against C's (goal <= 1.1)`);
  console.log(formatTable(rows));
  console.log("CPU us/exit: user + system CPU time of the whole process per exit (petasan: every thread).");
  console.log(`Every run, exits/s:\n${details.join("\n")}`);
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`exit-rate: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
