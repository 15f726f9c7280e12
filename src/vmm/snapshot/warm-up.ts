/**
 * Runs the code that reads and checks a state file once, on a small built-in sample, so that a later restore in
 * this process does not pay for V8 compiling it on first use. Measured on the API path (PUT /snapshot/load into a
 * process that had started its threads): checking the state file cost ~2.5 ms the first time and ~0.3 ms after.
 * A process that waits for a load (API mode) calls it while idle; it touches no file and no KVM, and a failure here
 * only means the code stays cold.
 */
import { decodeSnapshotFile, encodeSnapshotFile } from "./file-format.js";
import { parseSnapshotBody } from "./state-codec.js";
import { resolveLoadHugePages, withOverrides } from "../restore.js";

const CPUID = { function: 0, index: 0, flags: 0, eax: 0, ebx: 0, ecx: 0, edx: 0 };

function sampleBody(): unknown {
  const bytes = Buffer.alloc(64).toString("base64");
  return {
    snapshotType: "Full",
    config: { "boot-source": { kernel_image_path: "/sample" }, "machine-config": { vcpu_count: 1, mem_size_mib: 128 }, "network-interfaces": [], drives: [] },
    memory: [{ guestAddr: 0, size: 128 * 1024 * 1024 }],
    vm: { pit: bytes, clock: bytes, picMaster: bytes, picSlave: bytes, ioapic: bytes },
    vcpus: [{
      mpState: 0, regs: bytes, sregs: bytes, xsave: bytes, xcrs: bytes, debugregs: bytes, lapic: bytes, events: bytes,
      cpuid: [CPUID, { ...CPUID, function: 1 }], msrs: [[0x10, "0x0"], [0x174, "0x10"]],
    }],
    devices: { serial: {}, i8042: {}, rtc: {}, virtio: [{ kind: "block", id: "sample", base: 0xd000_0000, gsi: 5, transport: {} }], user: [] },
  };
}

/** Returns whether the sample went all the way through (a test keeps it so). */
export function warmUpSnapshotLoading(): boolean {
  try {
    const snap = parseSnapshotBody(decodeSnapshotFile(encodeSnapshotFile(sampleBody()), "sample"), "sample");
    withOverrides(snap.config, { network: [] });
    resolveLoadHugePages(snap.config["machine-config"].huge_pages);
    return true;
  } catch {
    // Only a warm-up: the real load reports its own errors.
    return false;
  }
}
