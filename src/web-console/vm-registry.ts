/**
 * The VMs this console runs. The console process is their VMM: it creates each VM with the library
 * (createVm) in its own process, so "the VMs of this host that petasan runs" are the ones made here; VMs
 * that other petasan processes run are not shown (they have no shared registry to find them by).
 * Each entry keeps what the page shows: its console (shared by all viewers), a bounded log, the stats
 * history, and how it ended. Entries stay listed after the VM ends, until removed.
 */
import { EventEmitter } from "node:events";
import { existsSync } from "node:fs";
import { createVm, loadSnapshot, VmStateError, type VirtualMachine, type VmExit, type VmState } from "../lib/index.js";
import { AllowedPaths } from "./allowed-paths.js";
import { ConsoleHub } from "./console-hub.js";
import type { RestoreRequest, SnapshotRequest } from "./snapshot-requests.js";
import { SAMPLE_PERIOD_MS, StatsHistory, type StatsSample } from "./stats.js";

/** At most this many VMs listed at once (running or not): each holds memory and threads. */
export const MAX_VMS = 16;
/** Log lines kept per VM. */
export const LOG_LINES = 200;

/** A request the console refuses, with the HTTP status that says how: 400 bad input, 404 no such VM, 409 wrong state. */
export class ConsoleRequestError extends Error {
  override readonly name = "ConsoleRequestError";
  constructor(readonly status: 400 | 404 | 409, message: string) {
    super(message);
  }
}

export interface VmSummary {
  id: string;
  name: string;
  state: VmState;
  vcpus: number;
  memMib: number;
  kernel: string;
  drives: { id: string; path: string; readOnly: boolean }[];
  /** Milliseconds since the epoch. */
  createdAt: number;
  startedAt?: number;
  /** Milliseconds the VM has been up (since start, until it ended). */
  uptimeMs?: number;
  exit?: VmExit;
  /** Browser terminals attached to its console now. */
  viewers: number;
  /** Exits since boot, all vCPUs (from the last sample). */
  exitsTotal?: number;
  /** Whether the VM records dirty pages (machine-config track_dirty_pages), so that Diff snapshots can be taken. */
  trackDirtyPages: boolean;
  /** The snapshot this VM was restored from. */
  restoredFrom?: { snapshotPath: string; memFilePath: string };
  /** The last snapshot written of this VM from the console. */
  lastSnapshot?: { snapshotPath: string; memFilePath: string; type: "Full" | "Diff"; at: number };
}

export interface RegistryEvents {
  /** A VM was added, removed, or changed state. */
  changed: [];
  /** A new stats sample for VM `id`. */
  sample: [id: string, sample: StatsSample];
}

export class ConsoleVm {
  readonly hub: ConsoleHub;
  readonly stats = new StatsHistory();
  readonly logs: string[] = [];
  readonly createdAt = Date.now();
  startedAt?: number;
  endedAt?: number;
  exit?: VmExit;
  lastSnapshot?: VmSummary["lastSnapshot"];
  /** Set while a snapshot is being written: the VM must stay paused until it is whole. */
  private snapshotting?: Promise<void>;
  private sampler?: NodeJS.Timeout;

  constructor(
    readonly id: string,
    readonly name: string,
    readonly vm: VirtualMachine,
    private readonly registry: VmRegistry,
    readonly restoredFrom?: VmSummary["restoredFrom"],
  ) {
    this.hub = new ConsoleHub(vm.console);
    vm.on("log", (line) => {
      this.logs.push(line);
      if (this.logs.length > LOG_LINES) this.logs.shift();
    });
    vm.on("state", (state) => {
      if (state === "Running" && this.startedAt === undefined) {
        this.startedAt = Date.now();
        this.sampler = setInterval(() => void this.sample(), SAMPLE_PERIOD_MS);
        void this.sample();
      }
      registry.changed();
    });
    void vm.exited.then((exit) => {
      clearInterval(this.sampler);
      this.exit = exit;
      this.endedAt = Date.now();
      registry.changed();
    });
  }

  summary(): VmSummary {
    const config = this.vm.config;
    const last = this.stats.samples.at(-1);
    return {
      id: this.id,
      name: this.name,
      state: this.vm.state,
      vcpus: config["machine-config"].vcpu_count,
      memMib: config["machine-config"].mem_size_mib,
      kernel: config["boot-source"].kernel_image_path,
      drives: config.drives.map((d) => ({ id: d.drive_id, path: d.path_on_host, readOnly: d.is_read_only })),
      createdAt: this.createdAt,
      startedAt: this.startedAt,
      uptimeMs: this.startedAt === undefined ? undefined : (this.endedAt ?? Date.now()) - this.startedAt,
      exit: this.exit,
      viewers: this.hub.viewerCount,
      exitsTotal: last?.exitsTotal,
      trackDirtyPages: config["machine-config"].track_dirty_pages,
      restoredFrom: this.restoredFrom,
      lastSnapshot: this.lastSnapshot,
    };
  }

  /**
   * A 409 while a snapshot is being written: resuming, pausing or changing the VM then would save a guest
   * that moved on under the snapshot (the library checks the VM is paused only as the snapshot begins).
   */
  assertNoSnapshot(what: string): void {
    if (this.snapshotting) throw new ConsoleRequestError(409, `${what}: VM ${this.id} is writing a snapshot; try again when it is done`);
  }

  /** A 409 unless a snapshot can be taken now: the VM runs or is paused, and no other snapshot is under way. */
  assertCanSnapshot(): void {
    this.assertNoSnapshot("snapshot");
    const state = this.vm.state;
    if (state !== "Running" && state !== "Paused") throw new ConsoleRequestError(409, `snapshot: the VM is ${state}; only a running or paused VM can be saved`);
  }

  /** Resolves once no snapshot is being written (stop and remove wait for it rather than cut it short). */
  async snapshotDone(): Promise<void> {
    await this.snapshotting;
  }

  /**
   * Writes a snapshot of the VM to paths already checked: pauses it if it runs, and resumes it afterwards,
   * whether the snapshot was written or refused. The library's refusals (a vsock, balloon or user device, a
   * Diff without dirty page tracking) and I/O errors are 400s with its message.
   */
  async snapshot(target: Omit<SnapshotRequest, "overwrite">): Promise<void> {
    this.assertCanSnapshot();
    const state = this.vm.state;
    let done!: () => void;
    this.snapshotting = new Promise((resolve) => (done = resolve));
    try {
      const wasRunning = state === "Running";
      if (wasRunning) await this.vm.pause();
      try {
        await this.vm.snapshot(target);
      } catch (error) {
        if (error instanceof VmStateError) throw error;
        throw new ConsoleRequestError(400, `snapshot: ${(error as Error).message}`);
      } finally {
        // Stopped meanwhile (the guest cannot end while paused; only stop() can, and it waits for this).
        if (wasRunning && this.vm.state === "Paused") this.vm.resume();
      }
      this.lastSnapshot = { ...target, at: Date.now() };
    } finally {
      this.snapshotting = undefined;
      done();
      this.registry.changed();
    }
  }

  private async sample(): Promise<void> {
    if (this.vm.state !== "Running" && this.vm.state !== "Paused") return;
    try {
      const sample = this.stats.add(await this.vm.metrics(), Date.now());
      if (sample) this.registry.emit("sample", this.id, sample);
    } catch {
      // The VM ended between the state check and the reading: its last sample stands.
    }
  }
}

export class VmRegistry extends EventEmitter<RegistryEvents> {
  private readonly vms = new Map<string, ConsoleVm>();
  private nextId = 1;

  constructor(private readonly paths: AllowedPaths, private readonly options: { allowNet: boolean }) {
    super();
  }

  list(): ConsoleVm[] {
    return [...this.vms.values()];
  }

  get(id: string): ConsoleVm {
    const entry = this.vms.get(id);
    if (!entry) throw new ConsoleRequestError(404, `no VM ${JSON.stringify(id)} in this console`);
    return entry;
  }

  /**
   * Creates a VM from a Firecracker config (object or JSON text) after checking it and every path it names;
   * starts it unless `start` is false. A VM that fails to start stays listed, Stopped, with the reason.
   */
  async create(config: unknown, options: { name?: string; start?: boolean } = {}): Promise<ConsoleVm> {
    this.assertRoom();
    if (typeof config !== "string" && (typeof config !== "object" || config === null || Array.isArray(config))) {
      throw new ConsoleRequestError(400, "config: expected Firecracker's config-file JSON, as an object or as text");
    }
    let vm: VirtualMachine;
    try {
      vm = createVm(config as Parameters<typeof createVm>[0], { log: { level: "Info" } });
    } catch (error) {
      throw new ConsoleRequestError(400, (error as Error).message);
    }
    return this.add(vm, options);
  }

  /**
   * Creates a VM from a snapshot (the library's loadSnapshot), listed as any other: both files must be under an
   * allowed folder, and so must the files its saved config makes it open (drives; not the log and metrics, which loadSnapshot drops, nor the kernel,
   * which a restore does not read). A bad state file is a 400 with the library's SnapshotFileError text; a bad
   * memory file is found as it starts, which fails as a created VM's start does.
   */
  async restore(source: RestoreRequest, options: { name?: string; start?: boolean } = {}): Promise<ConsoleVm> {
    this.assertRoom();
    const snapshotPath = this.checkPath(source.snapshotPath, "snapshot.snapshotPath");
    const memFilePath = this.checkPath(source.memFilePath, "snapshot.memFilePath");
    let vm: VirtualMachine;
    try {
      vm = loadSnapshot({ snapshotPath, memFilePath, resume: source.resume, trackDirtyPages: source.trackDirtyPages }, { log: { level: "Info" } });
    } catch (error) {
      throw new ConsoleRequestError(400, (error as Error).message);
    }
    return this.add(vm, options, { snapshotPath, memFilePath });
  }

  /** Writes a snapshot of `entry` where the request says, once its paths are allowed and free to write. */
  async snapshot(entry: ConsoleVm, request: SnapshotRequest): Promise<void> {
    entry.assertCanSnapshot();
    const snapshotPath = this.checkPath(request.snapshotPath, "snapshotPath");
    const memFilePath = this.checkPath(request.memFilePath, "memFilePath");
    if (snapshotPath === memFilePath) throw new ConsoleRequestError(400, `snapshotPath and memFilePath are the same file (${snapshotPath})`);
    for (const [field, file] of [["snapshotPath", snapshotPath], ["memFilePath", memFilePath]]) {
      // The library writes beside the file and renames over it: a drive image named here would be replaced whole.
      const user = this.userOf(file);
      if (user) throw new ConsoleRequestError(400, `${field}: ${file} is ${user}; choose another file`);
      if (!request.overwrite && existsSync(file)) throw new ConsoleRequestError(400, `${field}: ${file} exists; ask to overwrite it ("overwrite": true)`);
    }
    await entry.snapshot({ snapshotPath, memFilePath, type: request.type });
  }

  /** Which listed VM uses `file` (resolved), and as what; undefined when none does. */
  private userOf(file: string): string | undefined {
    for (const entry of this.vms.values()) {
      const config = entry.vm.config;
      const named: [string, string | undefined][] = [
        ["the kernel", config["boot-source"].kernel_image_path],
        ["the initrd", config["boot-source"].initrd_path],
        ...config.drives.map((d): [string, string] => [`drive ${d.drive_id}`, d.path_on_host]),
        ["the log file", config.logger?.log_path],
        ["the metrics file", config.metrics?.metrics_path],
      ];
      for (const [what, namedPath] of named) {
        if (namedPath !== undefined && this.resolvedOrNull(namedPath) === file) return `${what} of VM ${entry.id}`;
      }
    }
    return undefined;
  }

  private resolvedOrNull(file: string): string | null {
    try {
      return this.paths.check(file, "");
    } catch {
      return null;
    }
  }

  private assertRoom(): void {
    if (this.vms.size >= MAX_VMS) throw new ConsoleRequestError(409, `this console already lists ${MAX_VMS} VMs: remove a stopped one first`);
  }

  /** Lists a VM made by the library, once every path it uses is allowed, and starts it unless `start` is false. */
  private async add(vm: VirtualMachine, options: { name?: string; start?: boolean }, restoredFrom?: VmSummary["restoredFrom"]): Promise<ConsoleVm> {
    try {
      this.paths.checkConfig(vm.config, { bootFiles: restoredFrom === undefined });
    } catch (error) {
      await vm.stop();
      throw new ConsoleRequestError(400, (error as Error).message);
    }
    if (vm.config["network-interfaces"].length > 0 && !this.options.allowNet) {
      await vm.stop();
      throw new ConsoleRequestError(400, "network-interfaces: this console does not create tap devices unless started with --allow-net");
    }
    const id = `vm${this.nextId++}`;
    const entry = new ConsoleVm(id, options.name?.trim() || id, vm, this, restoredFrom);
    this.vms.set(id, entry);
    this.changed();
    if (options.start !== false) await this.start(entry);
    return entry;
  }

  async start(entry: ConsoleVm): Promise<void> {
    try {
      await entry.vm.start();
    } catch (error) {
      // A failed build leaves the VM Stopped, its exit saying why; the caller hears it too.
      throw new ConsoleRequestError(error instanceof VmStateError ? 409 : 400, (error as Error).message);
    }
  }

  /** `path`, resolved, if the user allowed it (for a drive swap); a 400 otherwise. */
  checkPath(path: string, field: string): string {
    try {
      return this.paths.check(path, field);
    } catch (error) {
      throw new ConsoleRequestError(400, (error as Error).message);
    }
  }

  /** Stops the VM if it runs, and forgets it. */
  async remove(id: string): Promise<void> {
    const entry = this.get(id);
    await entry.snapshotDone();
    await entry.vm.stop("removed from the console");
    this.vms.delete(id);
    this.changed();
  }

  /** Stops every VM (the console is closing). */
  async stopAll(): Promise<void> {
    await Promise.all(this.list().map(async (entry) => {
      await entry.snapshotDone();
      await entry.vm.stop("the console is closing");
    }));
  }

  changed(): void {
    this.emit("changed");
  }
}
