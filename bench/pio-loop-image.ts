/**
 * The benchmark guest: test/guests/pio-loop.S with its parameter block (iterations, ring, port) written
 * into a copy of the ELF file. petasan and the C baseline then load the very same file, so both run the
 * same instructions from the same entry state.
 */
import { readFile, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { buildTestGuest } from "../test/guests/build.js";
import { PIO_LOOP_PARAMS } from "../test/guests/pio-loop-params.js";
import { parseElf } from "../src/boot/elf.js";
import { BenchError } from "./bench-error.js";

export interface PioLoopParams {
  /** OUT instructions (VM exits) in the loop. */
  iterations: number;
  /** 3: the loop runs at ring 3 (native on this host); 0: at ring 0 (emulated on this host). */
  ring: 0 | 3;
  port: number;
  /** When set, the loop reads 4 bytes at this MMIO address instead of writing to `port`. */
  mmio?: number;
}

export const BENCH_DIR = path.join(tmpdir(), "petasan-bench");

/** Builds pio-loop (cached) and writes a copy with `params` poked in; returns the copy's path. */
export async function pioLoopImage(params: PioLoopParams): Promise<string> {
  const elf = new Uint8Array(await readFile(await buildTestGuest("pio-loop")));
  const image = parseElf(elf);
  const fileOffsetOf = (guestAddr: number): number => {
    const s = image.segments.find((seg) => guestAddr >= seg.paddr && guestAddr + 8 <= seg.paddr + seg.filesz);
    if (!s) throw new BenchError(`pio-loop: guest address 0x${guestAddr.toString(16)} is in no loaded file bytes`);
    return s.fileOffset + (guestAddr - s.paddr);
  };
  const view = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  const magicAt = fileOffsetOf(PIO_LOOP_PARAMS.magicAddr);
  const magic = new TextDecoder().decode(elf.subarray(magicAt, magicAt + 8));
  if (magic !== PIO_LOOP_PARAMS.magic) throw new BenchError(`pio-loop: parameter block magic is "${magic}", not "${PIO_LOOP_PARAMS.magic}"`);
  view.setBigUint64(fileOffsetOf(PIO_LOOP_PARAMS.iterationsAddr), BigInt(params.iterations), true);
  view.setBigUint64(fileOffsetOf(PIO_LOOP_PARAMS.ringAddr), BigInt(params.ring), true);
  view.setBigUint64(fileOffsetOf(PIO_LOOP_PARAMS.portAddr), BigInt(params.port), true);
  view.setBigUint64(fileOffsetOf(PIO_LOOP_PARAMS.mmioAddr), BigInt(params.mmio ?? 0), true);

  await mkdir(BENCH_DIR, { recursive: true });
  const out = path.join(BENCH_DIR, `pio-loop-n${params.iterations}-ring${params.ring}-port${params.port.toString(16)}${params.mmio ? `-mmio${params.mmio.toString(16)}` : ""}.elf`);
  await writeFile(out, elf);
  return out;
}
