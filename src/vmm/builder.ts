/**
 * The one place a VM is built, in a fixed order (after Firecracker's build_microvm_for_boot): read the
 * boot files → KVM VM with in-kernel irqchip and PIT → guest RAM → kernel, initrd, command line and boot
 * structures → vCPUs → Vmm. Each step that acquires something registers its release, so a failure at
 * step N undoes steps 1..N-1; every error says which step failed.
 */
import { close } from "../sys/libc.js";
import { newEventFd } from "../sys/eventfd.js";
import { Kvm } from "../kvm/kvm.js";
import { KVM_MEM_LOG_DIRTY_PAGES, type Vm } from "../kvm/vm.js";
import { unmap, guestMemoryOver } from "../memory/host-mapping.js";
import { mapGuestRam } from "../memory/ram-backing.js";
import { cpusOfNumaNode } from "../sys/affinity.js";
import type { MemoryRegionDescriptor } from "../memory/guest-memory.js";
import { guestRamRegions } from "../arch/x86/memory-layout.js";
import { KVM_TSS_ADDR, PAGE_SIZE } from "../arch/x86/layout.js";
import { loadKernel } from "../boot/loader.js";
import { readFileBytes } from "../memory/file-bytes.js";
import { Cmdline } from "../boot/cmdline.js";
import { writeMpTable } from "../boot/mptable.js";
import { placeVirtioDevices } from "./device-manager.js";
import type { VmConfig } from "../config/vm-config.js";
import { cpuTemplateOf } from "../config/machine-config.js";
import { DEFAULT_MMDS_IPV4_ADDRESS } from "../config/mmds.js";
import type { MmdsSpec } from "./device-thread/protocol.js";
import { VcpuHandle } from "./vcpu/handle.js";
import type { Vcpu } from "../kvm/vcpu.js";
import { configureVcpu, hostCpuFacts, setBootRegisters } from "./vcpu-setup.js";
import { newLegacyStates } from "./register-states.js";
import { dirtyPageRecords } from "../memory/guest-memory.js";
import { Vmm } from "./vmm.js";
import type { LogSettings } from "./logger.js";
import type { UserDeviceSpec } from "./device-thread/user-devices.js";
import type { VirtioBackendSpec, VirtioDeviceSpec } from "./device-thread/protocol.js";
import type { SavedDevices } from "./snapshot/state-codec.js";

/** Compiled seccomp filters for the VM's threads. */
export interface ThreadFilters {
  devices: Uint8Array;
  vcpu: Uint8Array;
}

/** One page below the TSS, where QEMU puts it too: KVM's identity map for unpaged real mode on Intel. */
const KVM_IDENTITY_MAP_ADDR = KVM_TSS_ADDR - PAGE_SIZE;
const MiB = 1024 * 1024;
/**
 * Boot arguments when the config names none: the console on COM1, reboot through the i8042 reset line
 * (which ends the VMM), reboot on panic, and no probing for hardware petasan does not have (PCI, an AUX port).
 */
export const DEFAULT_BOOT_ARGS = "console=ttyS0 reboot=k panic=-1 pci=off i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd";

export class BuildError extends Error {
  override readonly name = "BuildError";
  constructor(readonly step: string, cause: unknown) {
    super(`${step}: ${(cause as Error)?.message ?? cause}`, { cause });
  }
}

export interface BuildOptions {
  /** Where COM1 output goes (an open fd), or null to discard it. */
  serialOutputFd: number | null;
  log: LogSettings;
  /** Devices written by the user (see device-thread/user-devices.ts). */
  userDevices?: UserDeviceSpec[];
  /** Virtio devices written by the user, placed after petasan's own. */
  userVirtioDevices?: VirtioBackendSpec[];
  /** The MMDS data store as JSON text, if MMDS was used before boot. */
  mmdsData?: string;
  /** petasan's host placement options (not Firecracker's): see HostPlacement. */
  host?: HostPlacement;
  /** Seccomp filters (compiled BPF) each thread installs on itself; absent: no filters. */
  seccomp?: ThreadFilters;
}

/** What the device thread needs to serve MMDS, when the config has an mmds-config. */
export function mmdsSpec(config: VmConfig, data: string | undefined): MmdsSpec | undefined {
  const mmds = config["mmds-config"];
  if (mmds === undefined) return undefined;
  return {
    version: mmds.version,
    imdsCompat: mmds.imds_compat,
    ipv4Address: mmds.ipv4_address ?? DEFAULT_MMDS_IPV4_ADDRESS,
    networkInterfaces: [...mmds.network_interfaces],
    data: data ?? "null",
  };
}

/** Where and how guest RAM and vCPU threads sit on the host (petasan options; Firecracker has none of these). */
export interface HostPlacement {
  /** Advise guest RAM MADV_MERGEABLE, so KSM may merge identical pages across VMs. */
  ksm?: boolean;
  /** Bind guest RAM to this host NUMA node (mbind) and pin every vCPU thread to the node's CPUs (sched_setaffinity). */
  numaNode?: number;
}

/**
 * The steps of a build (buildVm, restoreVm): each release pushed on `undo` runs, last first, when a later step
 * fails or the Vmm ends (releaseAll); a failed step throws BuildError naming it, or the error itself when
 * `passThrough` says it already speaks to the caller.
 */
export function buildSteps(passThrough: (e: unknown) => boolean = () => false) {
  const undo: (() => void)[] = [];
  const releaseAll = () => {
    while (undo.length) {
      try {
        undo.pop()!();
      } catch {
        // Keep releasing the rest.
      }
    }
  };
  const step = async <T>(name: string, fn: () => T | Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      releaseAll();
      if (passThrough(e)) throw e;
      throw new BuildError(name, e);
    }
  };
  return { undo, releaseAll, step };
}

/** Builds a VM from a validated config, ready to start(). */
export async function buildVm(config: VmConfig, opts: BuildOptions): Promise<Vmm> {
  const { undo, releaseAll, step } = buildSteps();

  const boot = config["boot-source"];
  const machine = config["machine-config"];
  const memBytes = machine.mem_size_mib * MiB;

  // Read into memory freed as soon as the kernel is loaded (readFileBytes: the garbage collector of a thread that
  // then idles might not free a 16+ MiB image while the VM lives).
  const kernel = await step(`reading kernel ${boot.kernel_image_path}`, () => readFileBytes(boot.kernel_image_path));
  undo.push(() => kernel.release());
  const initrd = boot.initrd_path ? await step(`reading initrd ${boot.initrd_path}`, () => readFileBytes(boot.initrd_path!)) : undefined;
  if (initrd) undo.push(() => initrd.release());

  const kvm = await step("opening /dev/kvm", () => Kvm.open());
  undo.push(() => kvm.close());
  await step("checking vCPU count", () => {
    const max = kvm.maxVcpus();
    if (machine.vcpu_count > max) throw new Error(`${machine.vcpu_count} vCPUs requested; this host's KVM allows ${max}`);
  });

  const vm = await step("creating the VM", () => {
    const vm = kvm.createVm();
    undo.push(() => vm.close());
    vm.setTssAddr(KVM_TSS_ADDR);
    vm.setIdentityMapAddr(KVM_IDENTITY_MAP_ADDR);
    vm.createIrqchip();
    vm.createPit2();
    return vm;
  });

  const host = opts.host ?? {};
  const vcpuCpus = host.numaNode === undefined ? undefined : await step("finding the NUMA node's CPUs", () => cpusOfNumaNode(host.numaNode!));
  const regions = await step(`allocating ${machine.mem_size_mib} MiB of guest memory`, () => {
    const regions: MemoryRegionDescriptor[] = [];
    const backing = { hugePages: machine.huge_pages, ksm: host.ksm, numaNode: host.numaNode };
    for (const [slot, r] of guestRamRegions(memBytes).entries()) {
      const hostAddr = mapGuestRam(r.size, backing);
      undo.push(() => unmap(hostAddr, r.size));
      vm.setUserMemoryRegion(slot, r.guestAddr, r.size, hostAddr, machine.track_dirty_pages ? KVM_MEM_LOG_DIRTY_PAGES : 0);
      regions.push({ guestAddr: r.guestAddr, size: r.size, hostAddr });
    }
    return regions;
  });
  const mem = guestMemoryOver(regions);

  const devices = await step("placing virtio devices", () => placeVirtioDevices(vm, config, (fn) => undo.push(fn), opts.userVirtioDevices));

  const cmdline = new Cmdline();
  await step("building the kernel command line", () => {
    cmdline.addRaw(boot.boot_args ?? DEFAULT_BOOT_ARGS);
    for (const arg of devices.cmdlineArgs) cmdline.addRaw(arg);
    cmdline.addDefaults(devices.rootArgs);
  });

  const entry = await step(`loading kernel ${boot.kernel_image_path}`, () =>
    loadKernel(mem, kernel.bytes, { initrd: initrd?.bytes, cmdline: cmdline.toString(), memBytes }),
  );
  kernel.release();
  initrd?.release();
  // The MP table tells the guest about every vCPU and the IOAPIC that routes the virtio GSIs (as Firecracker).
  await step("writing the MP table", () => writeMpTable(mem, machine.vcpu_count));

  const vcpus = await step("creating vCPUs", () => {
    const host = hostCpuFacts(kvm);
    return createVcpuHandles(vm, machine.vcpu_count, undo, {
      placement: { cpus: vcpuCpus, seccomp: opts.seccomp?.vcpu },
      setUp: (vcpu, id) => {
        configureVcpu(vcpu, host, machine.vcpu_count, cpuTemplateOf(machine));
        if (id === 0) setBootRegisters(vcpu, entry);
      },
    });
  });

  const controlEventFd = await step("creating the device thread's control eventfd", newEventFd);
  undo.push(() => close(controlEventFd));

  return assembleVmm({ kvm, vm, config, regions, vcpus, virtio: devices.specs, controlEventFd, release: releaseAll }, {
    serialOutputFd: opts.serialOutputFd, log: opts.log, seccomp: opts.seccomp, mmdsData: opts.mmdsData, userDevices: opts.userDevices ?? [],
  });
}

/**
 * The VM's vCPUs, each set up by `setUp` as it is made (each registered in `undo`), and the eventfd they hand exits to
 * the device thread on: what buildVm and restoreVm both make.
 */
export function createVcpuHandles(
  vm: Vm, count: number, undo: (() => void)[],
  { placement, setUp }: { placement: { cpus?: readonly number[]; seccomp?: Uint8Array }; setUp?: (vcpu: Vcpu, id: number) => void },
): { handles: VcpuHandle[]; exitEventFd: number } {
  const exitEventFd = newEventFd();
  undo.push(() => close(exitEventFd));
  const handles: VcpuHandle[] = [];
  for (let id = 0; id < count; id++) {
    const vcpu = vm.createVcpu(id);
    undo.push(() => vcpu.close());
    setUp?.(vcpu, id);
    handles.push(new VcpuHandle(vcpu, exitEventFd, placement));
  }
  return { handles, exitEventFd };
}

/** What buildVm and restoreVm made, for assembleVmm. */
export interface BuiltParts {
  kvm: Kvm;
  vm: Vm;
  config: VmConfig;
  regions: MemoryRegionDescriptor[];
  /** `exitEventFd`: what a vCPU writes when it hands an exit to the device thread. */
  vcpus: { handles: VcpuHandle[]; exitEventFd: number };
  virtio: VirtioDeviceSpec[];
  controlEventFd: number;
  /** Undoes every step: closes fds, unmaps memory. */
  release: () => void;
}

/**
 * The Vmm over a VM built or restored: the one place that says what the device thread is given, so a booted and a
 * restored VM cannot differ in it by oversight. `restoreDevices`: the saved device states of a snapshot.
 */
export function assembleVmm(
  parts: BuiltParts,
  opts: Pick<BuildOptions, "serialOutputFd" | "log" | "seccomp" | "mmdsData"> & { userDevices: UserDeviceSpec[]; restoreDevices?: SavedDevices },
): Vmm {
  const { vcpus, config } = parts;
  return new Vmm({
    kvm: parts.kvm,
    vm: parts.vm,
    vcpus: vcpus.handles,
    exitEventFd: vcpus.exitEventFd,
    controlEventFd: parts.controlEventFd,
    config,
    deviceThreadData: {
      vmFd: parts.vm.fd,
      memory: parts.regions,
      vcpus: vcpus.handles.map((h) => ({ id: h.vcpu.id, runAddr: h.vcpu.runAddr, mmapSize: h.vcpu.mmapSize, control: h.control.buffer })),
      serialOutputFd: opts.serialOutputFd,
      legacyStates: newLegacyStates(),
      virtio: parts.virtio,
      userDevices: opts.userDevices,
      mmds: mmdsSpec(config, opts.mmdsData),
      log: opts.log,
      trackDirtyPages: config["machine-config"].track_dirty_pages,
      ...(config["machine-config"].track_dirty_pages && { dirtyPages: dirtyPageRecords(parts.regions) }),
      seccomp: opts.seccomp?.devices,
      ...(opts.restoreDevices && { restoreDevices: opts.restoreDevices }),
    },
    release: parts.release,
  });
}
