/**
 * The device thread's part of a snapshot: device states, the VM-wide KVM state and guest RAM, taken in one
 * go on the thread that owns the devices, so no queue is served and no interrupt raised between them. And its
 * part of a restore: the saved states put back into freshly attached devices before the first vCPU runs.
 */
import { openSync, closeSync, renameSync, rmSync } from "node:fs";
import type { Vm } from "../../kvm/vm.js";
import { saveVmState } from "../../kvm/state.js";
import { writeGuestMemory } from "../../memory/memory-file.js";
import type { GuestMemory } from "../../memory/guest-memory.js";
import type { LegacyDevices } from "./legacy-devices.js";
import type { AttachedVirtioDevice } from "./virtio-devices.js";
import { encodeVmState, type SavedDevices, type SavedVmState } from "../snapshot/state-codec.js";

export interface SnapshotRequest {
  memFilePath: string;
  /** Write only the pages dirtied since the last snapshot (KVM dirty log); else all of RAM. */
  diff: boolean;
  /** Dirty pages are tracked: a Full snapshot also restarts the log, so the next Diff is relative to it. */
  trackDirtyPages: boolean;
}

export interface SnapshotParts {
  devices: SavedDevices;
  vm: SavedVmState;
  memoryBytesWritten: number;
}

export function saveDevices(legacy: LegacyDevices, virtio: readonly AttachedVirtioDevice[]): SavedDevices {
  return {
    serial: legacy.serial.saveState(),
    i8042: legacy.i8042.saveState(),
    rtc: legacy.rtc.saveState(),
    virtio: virtio.map((v) => ({ kind: v.spec.backend.kind, id: v.spec.backend.id, base: v.spec.base, gsi: v.spec.gsi, transport: v.transport.saveState() })),
  };
}

/** Puts saved device states back; throws (one line, naming the device) if they do not fit the devices attached. */
export function restoreDevices(saved: SavedDevices, legacy: LegacyDevices, virtio: readonly AttachedVirtioDevice[]): void {
  legacy.serial.restoreState(saved.serial);
  legacy.i8042.restoreState(saved.i8042);
  legacy.rtc.restoreState(saved.rtc);
  if (saved.virtio.length !== virtio.length) throw new Error(`the snapshot holds ${saved.virtio.length} virtio devices, the VM has ${virtio.length}`);
  saved.virtio.forEach((s, i) => {
    const a = virtio[i];
    if (s.kind !== a.spec.backend.kind || s.id !== a.spec.backend.id || s.base !== a.spec.base || s.gsi !== a.spec.gsi) {
      throw new Error(`virtio device ${i} is ${a.spec.backend.kind} "${a.spec.backend.id}" at 0x${a.spec.base.toString(16)}, the snapshot has ${s.kind} "${s.id}" at 0x${s.base.toString(16)}`);
    }
    a.transport.restoreState(s.transport);
  });
}

export function takeSnapshot(req: SnapshotRequest, vm: Vm, mem: GuestMemory, legacy: LegacyDevices, virtio: readonly AttachedVirtioDevice[]): SnapshotParts {
  const devices = saveDevices(legacy, virtio);
  const vmState = encodeVmState(saveVmState(vm));
  const memory = mem.regions;
  // What the vCPUs wrote (KVM's log) and what the devices wrote (GuestMemory's record). Both are read and cleared
  // even for a Full snapshot, so that the next Diff starts here.
  const dirty = req.trackDirtyPages
    ? memory.map((r, slot) => {
      const words = vm.getDirtyLog(slot, r.size);
      const devices = mem.takeDirtyPages(slot);
      for (let i = 0; i < words.length; i++) words[i] |= devices[i];
      return words;
    })
    : undefined;
  // Written beside and renamed over: the file at that path may be the one this VM's RAM is mapped from (a
  // restored VM saved to where it came from), and truncating that one would pull pages from under the guest.
  const tmp = `${req.memFilePath}.partial-${process.pid}`;
  let memoryBytesWritten: number;
  try {
    const fd = openSync(tmp, "w", 0o600);
    try {
      memoryBytesWritten = writeGuestMemory(fd, memory, req.diff ? dirty : undefined);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, req.memFilePath);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  return { devices, vm: vmState, memoryBytesWritten };
}
