import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { buildTestGuest, TEST_GUEST_NAMES, TestGuestBuildError, type TestGuestName } from "./build.js";
import { PIO_LOOP_PARAMS } from "./pio-loop-params.js";

// ELF constants (System V gABI; elf.h).
const ELFCLASS32 = 1, ELFCLASS64 = 2;
const EM_386 = 3, EM_X86_64 = 62;
const PT_LOAD = 1, PT_NOTE = 4;

interface ProgramHeader {
  type: number;
  offset: number;
  paddr: number;
  filesz: number;
}

/** Just the fields these checks need, from an ELF32 or ELF64 little-endian file. */
function parseElf(file: Buffer) {
  assert.deepEqual([...file.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46], "ELF magic");
  const elfClass = file[4];
  const is64 = elfClass === ELFCLASS64;
  const machine = file.readUInt16LE(18);
  const entry = is64 ? Number(file.readBigUInt64LE(24)) : file.readUInt32LE(24);
  const phoff = is64 ? Number(file.readBigUInt64LE(32)) : file.readUInt32LE(28);
  const phentsize = file.readUInt16LE(is64 ? 54 : 42);
  const phnum = file.readUInt16LE(is64 ? 56 : 44);
  const headers: ProgramHeader[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    headers.push(
      is64
        ? { type: file.readUInt32LE(at), offset: Number(file.readBigUInt64LE(at + 8)), paddr: Number(file.readBigUInt64LE(at + 24)), filesz: Number(file.readBigUInt64LE(at + 32)) }
        : { type: file.readUInt32LE(at), offset: file.readUInt32LE(at + 4), paddr: file.readUInt32LE(at + 12), filesz: file.readUInt32LE(at + 16) },
    );
  }
  return { elfClass, machine, entry, headers };
}

/** The file bytes that load at guest physical `addr`. */
function bytesAt(file: Buffer, headers: ProgramHeader[], addr: number, length: number): Buffer {
  const segment = headers.find((h) => h.type === PT_LOAD && addr >= h.paddr && addr + length <= h.paddr + h.filesz);
  assert.ok(segment, `no PT_LOAD holds 0x${addr.toString(16)}`);
  const start = segment.offset + addr - segment.paddr;
  return file.subarray(start, start + length);
}

const EXPECTED: Record<TestGuestName, "real16" | "long64"> = {
  realmode: "real16",
  long64: "long64",
  echo: "long64",
  triplefault: "long64",
  unmapped: "long64",
  "pio-loop": "long64",
  smp: "long64",
  "virtio-blk": "long64",
  "virtio-net": "long64",
  "user-device": "long64",
  counter: "long64",
  "counter-fill": "long64",
};

for (const name of TEST_GUEST_NAMES) {
  test(`test guest ${name} builds into the ELF the loader contract expects`, async () => {
    const file = await readFile(await buildTestGuest(name));
    const elf = parseElf(file);
    assert.ok(!elf.headers.some((h) => h.type === PT_NOTE), "no notes, so no PVH entry");
    const loads = elf.headers.filter((h) => h.type === PT_LOAD);
    assert.ok(loads.length > 0);
    if (EXPECTED[name] === "real16") {
      assert.equal(elf.elfClass, ELFCLASS32);
      assert.equal(elf.machine, EM_386);
      assert.equal(elf.entry, 0x10000, "CS = 0x1000, IP = 0");
      assert.ok(loads.every((h) => h.paddr + h.filesz <= 0x20000), "fits the 64 KiB code segment");
    } else {
      assert.equal(elf.elfClass, ELFCLASS64);
      assert.equal(elf.machine, EM_X86_64);
      assert.equal(elf.entry, 0x100000);
      assert.ok(loads.every((h) => h.paddr >= 0x100000), "loaded at or above 1 MiB");
    }
  });
}

test("pio-loop's parameter block sits where pio-loop-params.ts says, with its defaults", async () => {
  const file = await readFile(await buildTestGuest("pio-loop"));
  const { headers } = parseElf(file);
  assert.equal(bytesAt(file, headers, PIO_LOOP_PARAMS.magicAddr, 8).toString("latin1"), PIO_LOOP_PARAMS.magic);
  assert.equal(bytesAt(file, headers, PIO_LOOP_PARAMS.iterationsAddr, 8).readBigUInt64LE(), 100000n);
  assert.equal(bytesAt(file, headers, PIO_LOOP_PARAMS.ringAddr, 8).readBigUInt64LE(), 3n);
  assert.equal(bytesAt(file, headers, PIO_LOOP_PARAMS.portAddr, 8).readBigUInt64LE(), 0x80n);
});

test("building the same guest twice reuses the cached ELF", async () => {
  assert.equal(await buildTestGuest("long64"), await buildTestGuest("long64"));
});

test("an unknown guest name is a TestGuestBuildError listing the known ones", async () => {
  await assert.rejects(buildTestGuest("nope"), (error: unknown) => {
    assert.ok(error instanceof TestGuestBuildError);
    assert.match(error.message, /unknown test guest "nope".*realmode/);
    return true;
  });
});
