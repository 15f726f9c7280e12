/**
 * Builds a VM from a snapshot instead of a kernel (Firecracker's build_microvm_from_snapshot), in a fixed order:
 * read and check the state file → check the memory file's size → KVM VM → guest RAM mapped MAP_PRIVATE from the
 * memory file → in-kernel irqchip and PIT → virtio devices placed as at boot (same config, same order, so the same
 * windows and GSIs) → vCPUs with their saved state → VM-wide state (PIT, kvmclock, PICs, IOAPIC) → Vmm whose
 * device thread puts the device states back before reporting ready. Nothing is read from the memory file here:
 * pages come in on the guest's first touch, so the time to restore does not grow with guest RAM.
 * A failure at any step releases what the steps before it took and names the step, and no vCPU has run.
 */
import { closeSync, fstatSync, openSync, readFileSync, statSync } from "node:fs";
import { close } from "../sys/libc.js";
import { newEventFd } from "../sys/eventfd.js";
import { Kvm } from "../kvm/kvm.js";
import { KVM_MEM_LOG_DIRTY_PAGES } from "../kvm/vm.js";
import { restoreVcpuState, restoreVmState } from "../kvm/state.js";
import { unmap } from "../memory/host-mapping.js";
import { mapFilePrivate, regionFileOffsets } from "../memory/memory-file.js";
import { adviseTransparentHugePages } from "../memory/ram-backing.js";
import type { HugePages } from "../config/machine-config.js";
import type { MemoryRegionDescriptor } from "../memory/guest-memory.js";
import { guestRamRegions } from "../arch/x86/memory-layout.js";
import { KVM_TSS_ADDR, PAGE_SIZE } from "../arch/x86/layout.js";
import type { VmConfig } from "../config/vm-config.js";
import { placeVirtioDevices } from "./device-manager.js";
import { Vmm } from "./vmm.js";
import { assembleVmm, buildSteps, createVcpuHandles, type ThreadFilters } from "./builder.js";
import type { LogSettings } from "./logger.js";
import type { UserDeviceSpec } from "./device-thread/user-devices.js";
import type { VirtioBackendSpec } from "./device-thread/protocol.js";
import { decodeSnapshotFile, MAX_SNAPSHOT_BYTES, SnapshotFileError } from "./snapshot/file-format.js";
import { parseSnapshotBody } from "./snapshot/state-codec.js";

const KVM_IDENTITY_MAP_ADDR = KVM_TSS_ADDR - PAGE_SIZE;
const MiB = 1024 * 1024;

export interface NetworkOverride {
  iface_id: string;
  host_dev_name: string;
}

/** PUT /snapshot/load's huge_pages: "Snapshot" (the default) keeps the saved VM's machine-config huge_pages. */
export type LoadHugePages = "Snapshot" | HugePages;

/**
 * The restored VM's huge pages (Firecracker's SnapshotLoadHugePageConfig::resolve). As in Firecracker (persist.rs,
 * GuestMemoryFromFileError::HugetlbfsSnapshot), hugetlbfs pages cannot come from mapping the memory file: that needs
 * a Uffd backend, which petasan does not have, so a 2M result is refused and the caller told what loads instead.
 */
export function resolveLoadHugePages(saved: HugePages, requested: LoadHugePages = "Snapshot"): HugePages {
  const pages = requested === "Snapshot" ? saved : requested;
  if (pages === "2M") {
    throw new Error(
      `cannot restore guest memory on 2M huge pages (hugetlbfs) by mapping the memory file${requested === "Snapshot" ? " (the snapshot's VM used them)" : ""}: ` +
        `as in Firecracker that needs a Uffd memory backend, which petasan does not have; load it with huge_pages "None" or "Transparent"`,
    );
  }
  return pages;
}

/** A state file as readSnapshot() read and checked it. */
export type ReadSnapshot = ReturnType<typeof parseSnapshotBody>;

export interface RestoreOptions {
  snapshotPath: string;
  /** The state file at snapshotPath as readSnapshot() returned it, if the caller has read it already: not read again. */
  snapshot?: ReadSnapshot;
  memFilePath: string;
  /** Record guest writes in KVM's dirty log, for Diff snapshots of the restored VM. */
  trackDirtyPages: boolean;
  /** Taps to use instead of those in the snapshot (Firecracker's network_overrides). */
  networkOverrides?: readonly NetworkOverride[];
  /** The vsock device's socket instead of the snapshot's (Firecracker's vsock_override). */
  vsockUdsPath?: string;
  /** Huge pages for the restored RAM (default "Snapshot": as saved); "2M" is refused (resolveLoadHugePages). */
  hugePages?: LoadHugePages;
  /** Devices written by the user: the same as the snapshot's VM had (their states are in the snapshot, their code is not). */
  userDevices?: UserDeviceSpec[];
  userVirtioDevices?: VirtioBackendSpec[];
  serialOutputFd: number | null;
  log: LogSettings;
  /** Seccomp filters each thread installs on itself, as buildVm's; absent: none. */
  seccomp?: ThreadFilters;
  /** The MMDS data store as JSON text (a snapshot holds none, as in Firecracker); absent: MMDS starts empty. */
  mmdsData?: string;
}

/** Reads and checks a state file: a SnapshotFileError says what is wrong with it (missing, truncated, corrupt, …). */
export function readSnapshot(path: string): ReadSnapshot {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (e) {
    throw new SnapshotFileError(`cannot read snapshot file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (size > MAX_SNAPSHOT_BYTES) throw new SnapshotFileError(`snapshot file ${path} is ${size} bytes, more than any petasan snapshot (${MAX_SNAPSHOT_BYTES})`);
  return parseSnapshotBody(decodeSnapshotFile(readFileSync(path), path), path);
}

/** What a restore may change in the saved config: taps (network_overrides) and the vsock socket (vsock_override). */
export interface ConfigOverrides {
  network?: readonly NetworkOverride[];
  /** The vsock device's uds_path instead of the snapshot's (Firecracker's vsock_override). */
  vsockUdsPath?: string;
}

/** The saved config with the overrides applied; every override must name a device of the snapshot (Firecracker's rule). */
export function withOverrides(config: VmConfig, overrides: ConfigOverrides): VmConfig {
  const ifaces = config["network-interfaces"].map((n) => ({ ...n }));
  for (const o of overrides.network ?? []) {
    const iface = ifaces.find((n) => n.iface_id === o.iface_id);
    if (!iface) throw new SnapshotFileError(`network_overrides names interface "${o.iface_id}", which the snapshot does not have`);
    iface.host_dev_name = o.host_dev_name;
  }
  if (overrides.vsockUdsPath !== undefined && config.vsock === undefined) throw new SnapshotFileError("vsock_override: the snapshot has no vsock device");
  const vsock = config.vsock && overrides.vsockUdsPath !== undefined ? { ...config.vsock, uds_path: overrides.vsockUdsPath } : config.vsock;
  return { ...config, "network-interfaces": ifaces, ...(vsock && { vsock }) };
}

export async function restoreVm(opts: RestoreOptions): Promise<Vmm> {
  // A bad file is the caller's to fix: keep its one-line message as it is.
  const { undo, releaseAll, step } = buildSteps((e) => e instanceof SnapshotFileError);

  const snap = await step("reading the snapshot", () => opts.snapshot ?? readSnapshot(opts.snapshotPath));
  const base = withOverrides(snap.config, { network: opts.networkOverrides, vsockUdsPath: opts.vsockUdsPath });
  const hugePages = await step("choosing huge pages", () => resolveLoadHugePages(base["machine-config"].huge_pages, opts.hugePages));
  const config: VmConfig = { ...base, "machine-config": { ...base["machine-config"], track_dirty_pages: opts.trackDirtyPages, huge_pages: hugePages } };
  const machine = config["machine-config"];
  const memBytes = machine.mem_size_mib * MiB;

  const layout = await step("checking the memory layout", () => {
    const expected = guestRamRegions(memBytes);
    const same = expected.length === snap.memory.length && expected.every((r, i) => r.guestAddr === snap.memory[i].guestAddr && r.size === snap.memory[i].size);
    if (!same) throw new SnapshotFileError(`snapshot file ${opts.snapshotPath}: its memory regions do not match a ${machine.mem_size_mib} MiB guest`);
    return expected;
  });

  const memFd = await step(`opening memory file ${opts.memFilePath}`, () => {
    let fd: number;
    try {
      fd = openSync(opts.memFilePath, "r");
    } catch (e) {
      throw new SnapshotFileError(`cannot open memory file ${opts.memFilePath}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    const size = fstatSync(fd).size;
    if (size !== memBytes) {
      closeSync(fd);
      throw new SnapshotFileError(`memory file ${opts.memFilePath} is ${size} bytes; the snapshot's guest has ${memBytes} bytes of RAM (${size < memBytes ? "truncated, or" : ""} the wrong file?)`);
    }
    return fd;
  });
  let memFdOpen = true;
  undo.push(() => {
    if (memFdOpen) closeSync(memFd);
  });

  const kvm = await step("opening /dev/kvm", () => Kvm.open());
  undo.push(() => kvm.close());
  await step("checking vCPU count", () => {
    const max = kvm.maxVcpus();
    if (machine.vcpu_count > max) throw new Error(`the snapshot has ${machine.vcpu_count} vCPUs; this host's KVM allows ${max}`);
  });
  const vm = await step("creating the VM", () => {
    const vm = kvm.createVm();
    undo.push(() => vm.close());
    vm.setTssAddr(KVM_TSS_ADDR);
    vm.setIdentityMapAddr(KVM_IDENTITY_MAP_ADDR);
    return vm;
  });

  const regions = await step(`mapping ${machine.mem_size_mib} MiB of guest memory from ${opts.memFilePath}`, () => {
    const offsets = regionFileOffsets(layout);
    return layout.map((r, slot): MemoryRegionDescriptor => {
      const hostAddr = mapFilePrivate(memFd, offsets[slot], r.size);
      undo.push(() => unmap(hostAddr, r.size));
      // As Firecracker's snapshot_file with Transparent: the guest's copies of the file's pages may be huge pages.
      if (machine.huge_pages === "Transparent") adviseTransparentHugePages(hostAddr, r.size);
      vm.setUserMemoryRegion(slot, r.guestAddr, r.size, hostAddr, machine.track_dirty_pages ? KVM_MEM_LOG_DIRTY_PAGES : 0);
      return { guestAddr: r.guestAddr, size: r.size, hostAddr };
    });
  });
  // The mappings keep the file's pages; the descriptor is not needed any more.
  closeSync(memFd);
  memFdOpen = false;
  // After the memory slots, as Firecracker orders it: a slot added once the VM has an irqchip cost 4-7 ms here
  // (KVM waits for its readers of the old slot set), before it 0.1 ms.
  await step("creating the irqchip and PIT", () => {
    vm.createIrqchip();
    vm.createPit2();
  });

  const devices = await step("placing virtio devices", () => placeVirtioDevices(vm, config, (fn) => undo.push(fn), opts.userVirtioDevices));

  const vcpus = await step("restoring vCPUs", () => {
    const made = createVcpuHandles(vm, machine.vcpu_count, undo, { placement: { seccomp: opts.seccomp?.vcpu } });
    // VM-wide state first (the IOAPIC and PICs the LAPICs deliver through), then each vCPU.
    restoreVmState(vm, snap.decodedVm);
    made.handles.forEach((h, id) => restoreVcpuState(h.vcpu, snap.decodedVcpus[id]));
    return made;
  });

  const controlEventFd = await step("creating the device thread's control eventfd", newEventFd);
  undo.push(() => close(controlEventFd));

  // As in Firecracker, the MMDS data store is not in the snapshot: the restored guest's MMDS starts empty unless the
  // caller gives it one.
  return assembleVmm({ kvm, vm, config, regions, vcpus, virtio: devices.specs, controlEventFd, release: releaseAll }, {
    serialOutputFd: opts.serialOutputFd, log: opts.log, seccomp: opts.seccomp, mmdsData: opts.mmdsData, userDevices: opts.userDevices ?? [], restoreDevices: snap.devices,
  });
}
