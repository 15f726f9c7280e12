/**
 * The VMs this console runs. The console process is their VMM: it creates each VM with the library
 * (createVm) in its own process, so "the VMs of this host that petasan runs" are the ones made here; VMs
 * that other petasan processes run are not shown (they have no shared registry to find them by).
 * Each entry keeps what the page shows: its console (shared by all viewers), a bounded log, the stats
 * history, and how it ended. Entries stay listed after the VM ends, until removed.
 */
import { EventEmitter } from "node:events";
import { createVm, VmStateError, type VirtualMachine, type VmExit, type VmState } from "../lib/index.js";
import { AllowedPaths } from "./allowed-paths.js";
import { ConsoleHub } from "./console-hub.js";
import { SAMPLE_PERIOD_MS, StatsHistory, type StatsSample } from "./stats.js";

/** At most this many VMs listed at once (running or not): each holds memory and threads. */
export const MAX_VMS = 16;
/** Log lines kept per VM. */
export const LOG_LINES = 200;

/** A request the console refuses, with the HTTP status that says how: 400 bad input, 404 no such VM, 409 wrong state, 501 not supported. */
export class ConsoleRequestError extends Error {
  override readonly name = "ConsoleRequestError";
  constructor(readonly status: 400 | 404 | 409 | 501, message: string) {
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
  private sampler?: NodeJS.Timeout;

  constructor(readonly id: string, readonly name: string, readonly vm: VirtualMachine, private readonly registry: VmRegistry) {
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
    };
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
    if (this.vms.size >= MAX_VMS) throw new ConsoleRequestError(409, `this console already lists ${MAX_VMS} VMs: remove a stopped one first`);
    if (typeof config !== "string" && (typeof config !== "object" || config === null || Array.isArray(config))) {
      throw new ConsoleRequestError(400, "config: expected Firecracker's config-file JSON, as an object or as text");
    }
    let vm: VirtualMachine;
    try {
      vm = createVm(config as Parameters<typeof createVm>[0], { log: { level: "Info" } });
    } catch (error) {
      throw new ConsoleRequestError(400, (error as Error).message);
    }
    try {
      this.paths.checkConfig(vm.config);
    } catch (error) {
      await vm.stop();
      throw new ConsoleRequestError(400, (error as Error).message);
    }
    if (vm.config["network-interfaces"].length > 0 && !this.options.allowNet) {
      await vm.stop();
      throw new ConsoleRequestError(400, "network-interfaces: this console does not create tap devices unless started with --allow-net");
    }
    const id = `vm${this.nextId++}`;
    const entry = new ConsoleVm(id, options.name?.trim() || id, vm, this);
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
    await entry.vm.stop("removed from the console");
    this.vms.delete(id);
    this.changed();
  }

  /** Stops every VM (the console is closing). */
  async stopAll(): Promise<void> {
    await Promise.all(this.list().map((entry) => entry.vm.stop("the console is closing")));
  }

  changed(): void {
    this.emit("changed");
  }
}
