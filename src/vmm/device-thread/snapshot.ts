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
import { encodeVmState, type SavedDevices, type SavedUserDevice, type SavedVmState } from "../snapshot/state-codec.js";
import type { AttachedUserDevice } from "./user-devices.js";

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

/**
 * Every device's state. A device written by the user without saveState() makes the snapshot fail, naming it, before
 * any device is asked (saving may change a device: vsock ends its connections).
 */
export function saveDevices(legacy: LegacyDevices, virtio: readonly AttachedVirtioDevice[], user: readonly AttachedUserDevice[] = []): SavedDevices {
  const unsaveable = [
    ...virtio.filter((v) => v.spec.backend.kind === "user" && typeof v.device.saveState !== "function").map((v) => v.spec.backend.id),
    // A device with shared state needs none: petasan saves those bytes itself.
    ...user.filter((u) => typeof u.device.saveState !== "function" && !u.spec.shared).map((u) => u.spec.name),
  ];
  if (unsaveable.length > 0) {
    throw new Error(`the device${unsaveable.length > 1 ? "s" : ""} written by the user ${unsaveable.map((n) => `"${n}"`).join(", ")} ${unsaveable.length > 1 ? "have" : "has"} no saveState(): a VM with ${unsaveable.length > 1 ? "them" : "it"} cannot be snapshotted`);
  }
  return {
    serial: legacy.serial.saveState(),
    i8042: legacy.i8042.saveState(),
    rtc: legacy.rtc.saveState(),
    virtio: virtio.map((v) => {
      const own = v.device.saveState ? { device: v.spec.backend.kind === "user" ? userState(v.spec.backend.id, () => v.device.saveState!()) : v.device.saveState() } : {};
      return { kind: v.spec.backend.kind, id: v.spec.backend.id, base: v.spec.base, gsi: v.spec.gsi, transport: v.transport.saveState(), ...own };
    }),
    user: user.map((u): SavedUserDevice => ({
      name: u.spec.name, bus: u.spec.bus, base: u.spec.base, length: u.spec.length,
      state: typeof u.device.saveState === "function" ? userState(u.spec.name, () => u.device.saveState!()) : null,
      ...(u.spec.shared && { shared: Buffer.from(u.spec.shared.state).toString("base64") }),
    })),
  };
}

/** A user device's saveState() result as the state file will hold it (JSON), or a one-line error naming the device. */
function userState(name: string, save: () => unknown): unknown {
  let state: unknown;
  try {
    state = save();
  } catch (e) {
    throw new Error(`device ${name}: saveState() failed: ${(e as Error)?.message ?? e}`, { cause: e });
  }
  let json: string | undefined;
  try {
    json = JSON.stringify(state);
  } catch (e) {
    throw new Error(`device ${name}: saveState() returned data that is not JSON (${(e as Error).message})`, { cause: e });
  }
  // undefined (or a function) has no JSON form; restoreState gets null then, as JSON would give it.
  return json === undefined ? null : JSON.parse(json);
}

/** Puts saved device states back; throws (one line, naming the device) if they do not fit the devices attached. */
export function restoreDevices(saved: SavedDevices, legacy: LegacyDevices, virtio: readonly AttachedVirtioDevice[]): void {
  legacy.serial.restoreState(saved.serial);
  legacy.i8042.restoreState(saved.i8042);
  legacy.rtc.restoreState(saved.rtc);
  if (saved.virtio.length !== virtio.length) {
    const list = (ds: readonly { kind: string; id: string }[]) => ds.map((d) => `${d.kind} "${d.id}"`).join(", ") || "none";
    throw new Error(`the snapshot holds virtio devices ${list(saved.virtio)}; the restored VM has ${list(virtio.map((v) => v.spec.backend))} (devices written by the user must be given again, as when it was taken)`);
  }
  saved.virtio.forEach((s, i) => {
    const a = virtio[i];
    if (s.kind !== a.spec.backend.kind || s.id !== a.spec.backend.id || s.base !== a.spec.base || s.gsi !== a.spec.gsi) {
      throw new Error(`virtio device ${i} is ${a.spec.backend.kind} "${a.spec.backend.id}" at 0x${a.spec.base.toString(16)}, the snapshot has ${s.kind} "${s.id}" at 0x${s.base.toString(16)}`);
    }
    // The device's own state first: the transport compares its config space with the saved one, then activates it.
    const name = `virtio-${s.kind} ${s.id}`;
    if (a.device.restoreState) {
      if (s.device === undefined) throw new Error(`${name}: the snapshot holds no state for it`);
      if (s.kind === "user") {
        try {
          a.device.restoreState(s.device);
        } catch (e) {
          throw new Error(`device ${s.id}: restoreState() failed: ${(e as Error)?.message ?? e}`, { cause: e });
        }
      } else {
        a.device.restoreState(s.device);
      }
      // Its config space may have changed (a balloon's target): the transport's copy of it is refreshed before the
      // transport compares it with the saved one (configChanged() on a transport not yet active raises no interrupt,
      // and restoreState then sets the saved config generation).
      a.transport.configChanged();
    } else if (s.device !== undefined) {
      throw new Error(`${name}: the snapshot holds a state for it, and it has no restoreState()`);
    }
    a.transport.restoreState(s.transport);
  });
}

/** Puts the saved states of the user's bus devices back: the same devices, by name and place, as when it was taken. */
export function restoreUserDevices(saved: readonly SavedUserDevice[], user: readonly AttachedUserDevice[]): void {
  const describe = (d: { name: string; bus: string; base: number; length: number }) => `"${d.name}" (${d.bus} 0x${d.base.toString(16)}+0x${d.length.toString(16)})`;
  if (saved.length !== user.length || saved.some((s, i) => s.name !== user[i].spec.name || s.bus !== user[i].spec.bus || s.base !== user[i].spec.base || s.length !== user[i].spec.length)) {
    const had = saved.map(describe).join(", ") || "none";
    const has = user.map((u) => describe(u.spec)).join(", ") || "none";
    throw new Error(`the snapshot's bus devices written by the user are ${had}; the restored VM is given ${has}`);
  }
  saved.forEach((s, i) => {
    const u = user[i];
    const shared = u.spec.shared?.state;
    if ((s.shared === undefined) !== (shared === undefined)) {
      throw new Error(`device ${s.name}: the snapshot was taken ${s.shared === undefined ? "without" : "with"} shared state (sharedStateBytes); the restored VM gives it ${shared ? "some" : "none"}`);
    }
    if (shared && s.shared !== undefined) {
      const bytes = Buffer.from(s.shared, "base64");
      if (bytes.length !== shared.byteLength) throw new Error(`device ${s.name}: the snapshot holds ${bytes.length} bytes of shared state; it is given ${shared.byteLength} (sharedStateBytes)`);
      new Uint8Array(shared).set(bytes);
      // Its shared bytes are its state; a device with saveState() too gets that back as well.
      if (s.state === null) return;
    }
    if (typeof u.device.restoreState !== "function") throw new Error(`device ${s.name} has no restoreState(): its saved state cannot be put back`);
    try {
      u.device.restoreState(s.state);
    } catch (e) {
      throw new Error(`device ${s.name}: restoreState() failed: ${(e as Error)?.message ?? e}`, { cause: e });
    }
  });
}

export function takeSnapshot(
  req: SnapshotRequest, vm: Vm, mem: GuestMemory, devices: { legacy: LegacyDevices; virtio: readonly AttachedVirtioDevice[]; user: readonly AttachedUserDevice[] },
): SnapshotParts {
  const saved = saveDevices(devices.legacy, devices.virtio, devices.user);
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
  return { devices: saved, vm: vmState, memoryBytesWritten };
}
