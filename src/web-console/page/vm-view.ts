// The selected VM: its facts, the lifecycle buttons (enabled by state), its console and its plots.
import { api } from "./api";
import { ConsoleTerminal } from "./terminal";
import { Plots } from "./plots";
import { duration, mib } from "./format";
import { openRestoreDialog, openSnapshotDialog } from "./snapshot-dialogs";
import type { StatsSample, VmState, VmSummary } from "./types";
import { uptime, type ListedVm } from "./vm-list";

/** Which buttons a state allows (the server checks again). */
const ALLOWED: Record<string, VmState[]> = {
  start: ["Created"],
  pause: ["Running"],
  resume: ["Paused"],
  stop: ["Created", "Starting", "Running", "Paused"],
  "ctrl-alt-del": ["Running"],
  "swap-drive": ["Running", "Paused"],
  snapshot: ["Running", "Paused"],
  // A restore makes a new VM: this one's state does not matter.
  restore: ["Created", "Starting", "Running", "Paused", "Stopped"],
  remove: ["Created", "Running", "Paused", "Stopped"],
};

export class VmView {
  private readonly terminal: ConsoleTerminal;
  private readonly plots: Plots;
  private summary: VmSummary;

  constructor(vm: ListedVm, samples: readonly StatsSample[], private readonly onRemoved: () => void) {
    this.summary = vm.summary;
    document.getElementById("vm-view")!.hidden = false;
    this.terminal = new ConsoleTerminal(document.getElementById("terminal")!, vm.summary.id);
    this.plots = new Plots(document.getElementById("plots")!);
    this.plots.update(samples);
    this.update(vm);
    void this.loadLog();
    this.terminal.focus();
  }

  get id(): string {
    return this.summary.id;
  }

  update(vm: ListedVm): void {
    const previous = this.summary.state;
    const s = (this.summary = vm.summary);
    document.getElementById("vm-name")!.textContent = s.name;
    const state = document.getElementById("vm-state")!;
    state.textContent = s.state;
    state.className = `badge ${s.state.toLowerCase()}`;
    this.tick(vm);
    for (const button of document.querySelectorAll<HTMLButtonElement>("#actions button")) {
      const allowed = ALLOWED[button.dataset.action!];
      if (allowed) button.disabled = !allowed.includes(s.state) || (button.dataset.action === "swap-drive" && s.drives.length === 0);
    }
    document.getElementById("exit")!.textContent = s.exit ? `Ended: ${s.exit.reason} (exit code ${s.exit.exitCode}): ${s.exit.message}` : "";
    const note = document.getElementById("snapshot-note")!;
    const notes = [
      s.restoredFrom && `Restored from ${s.restoredFrom.snapshotPath}`,
      s.lastSnapshot && `Last snapshot: ${s.lastSnapshot.snapshotPath} + ${s.lastSnapshot.memFilePath} (${s.lastSnapshot.type}, ${new Date(s.lastSnapshot.at).toLocaleTimeString()})`,
    ].filter(Boolean);
    note.textContent = notes.join(" · ");
    note.hidden = notes.length === 0;
    if (previous !== s.state) void this.loadLog();
  }

  /** Refreshes what moves with time (the uptime). */
  tick(vm: ListedVm): void {
    const s = vm.summary;
    document.getElementById("vm-facts")!.textContent = `${s.vcpus} vCPU${s.vcpus === 1 ? "" : "s"} · ${mib(s.memMib)} · up ${duration(uptime(vm))} · ${s.kernel}`;
  }

  samples(samples: readonly StatsSample[]): void {
    this.plots.update(samples);
  }

  async act(action: string): Promise<void> {
    const error = document.getElementById("action-error")!;
    error.hidden = true;
    try {
      if (action === "remove") {
        await api("DELETE", `/api/vms/${encodeURIComponent(this.id)}`);
        this.onRemoved();
      } else if (action === "snapshot") {
        openSnapshotDialog(this.summary);
        return;
      } else if (action === "restore") {
        openRestoreDialog(this.summary);
        return;
      } else if (action === "swap-drive") {
        const drive = this.summary.drives.length === 1 ? this.summary.drives[0].id : prompt(`Drive (${this.summary.drives.map((d) => d.id).join(", ")})`);
        if (!drive) return;
        const path = prompt(`New image for drive ${drive}`, this.summary.drives.find((d) => d.id === drive)?.path ?? "");
        if (!path) return;
        await api("PUT", `/api/vms/${encodeURIComponent(this.id)}/drives/${encodeURIComponent(drive)}`, { path });
      } else {
        await api("POST", `/api/vms/${encodeURIComponent(this.id)}/${action}`);
      }
    } catch (e) {
      error.textContent = (e as Error).message;
      error.hidden = false;
    }
    if (action !== "remove") this.terminal.focus();
  }

  dispose(): void {
    this.terminal.dispose();
    this.plots.dispose();
    document.getElementById("vm-view")!.hidden = true;
  }

  private async loadLog(): Promise<void> {
    try {
      const details = await api<{ logs: string[] }>("GET", `/api/vms/${encodeURIComponent(this.id)}`);
      document.getElementById("log")!.textContent = details.logs.join("\n");
    } catch {
      // Removed meanwhile: the list update closes this view.
    }
  }
}
