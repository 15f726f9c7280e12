/**
 * Writing a snapshot of a paused VM (Firecracker's PUT /snapshot/create): the memory file first (by the device
 * thread, with the device and VM-wide state taken in the same step), then the state file, written to a
 * temporary name and renamed, so a state file that exists is whole.
 */
import { renameSync, rmSync, writeFileSync } from "node:fs";
import type { Kvm } from "../../kvm/kvm.js";
import type { Vcpu } from "../../kvm/vcpu.js";
import { saveVcpuState, xsaveSize } from "../../kvm/state.js";
import type { MemoryRegionDescriptor } from "../../memory/guest-memory.js";
import type { VmConfig } from "../../config/vm-config.js";
import type { SnapshotParts } from "../device-thread/snapshot.js";
import { encodeSnapshotFile } from "./file-format.js";
import { encodeVcpuState, type SnapshotBody, type SnapshotType } from "./state-codec.js";

export interface SnapshotOptions {
  /** Where the state file goes. */
  snapshotPath: string;
  /** Where guest RAM goes. */
  memFilePath: string;
  type: SnapshotType;
}

export interface SnapshotSources {
  config: VmConfig;
  kvm: Kvm;
  vcpus: readonly Vcpu[];
  memory: readonly MemoryRegionDescriptor[];
  deviceThreadPart: () => Promise<{ parts?: SnapshotParts; error?: string }>;
}

export async function writeSnapshotState(opts: SnapshotOptions, src: SnapshotSources): Promise<SnapshotParts> {
  const msrIndices = src.kvm.msrIndexList();
  const xsave = xsaveSize(src.kvm);
  const vcpus = src.vcpus.map((v) => encodeVcpuState(saveVcpuState(v, msrIndices, xsave)));
  const answer = await src.deviceThreadPart();
  if (!answer.parts) throw new Error(`saving devices and memory failed: ${answer.error ?? "no answer"}`);
  const body: SnapshotBody = {
    snapshotType: opts.type,
    config: src.config,
    memory: src.memory.map((r) => ({ guestAddr: r.guestAddr, size: r.size })),
    vm: answer.parts.vm,
    vcpus,
    devices: answer.parts.devices,
  };
  const tmp = `${opts.snapshotPath}.partial-${process.pid}`;
  try {
    writeFileSync(tmp, encodeSnapshotFile(body), { mode: 0o600 });
    renameSync(tmp, opts.snapshotPath);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  return answer.parts;
}
