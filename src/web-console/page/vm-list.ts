// The list of VMs: name, state, vCPUs, memory, uptime, exits, viewers. A row click selects the VM.
import type { VmSummary } from "./types";
import { count, duration, mib } from "./format";

export interface ListedVm {
  summary: VmSummary;
  /** When the summary arrived (performance.now()), to advance the uptime between updates. */
  receivedAt: number;
}

/** Uptime now: the server's figure plus the time since it came, while the VM is up. */
export function uptime(vm: ListedVm): number | undefined {
  const { summary } = vm;
  if (summary.uptimeMs === undefined) return undefined;
  const live = summary.state === "Running" || summary.state === "Paused";
  return summary.uptimeMs + (live ? performance.now() - vm.receivedAt : 0);
}

export function renderList(body: HTMLElement, vms: ListedVm[], selected: string | undefined, select: (id: string) => void): void {
  const rows = vms.map((vm) => {
    const { summary } = vm;
    const row = document.createElement("tr");
    row.dataset.vm = summary.id;
    if (summary.id === selected) row.classList.add("selected");
    const cells: [string, string][] = [
      ["name", summary.name],
      ["state", summary.state],
      ["vcpus", String(summary.vcpus)],
      ["memory", mib(summary.memMib)],
      ["uptime", duration(uptime(vm))],
      ["exits", count(summary.exitsTotal)],
      ["viewers", String(summary.viewers)],
    ];
    for (const [name, text] of cells) {
      const cell = document.createElement("td");
      cell.className = name;
      if (name === "state") {
        const badge = document.createElement("span");
        badge.className = `badge ${summary.state.toLowerCase()}`;
        badge.textContent = text;
        cell.append(badge);
      } else cell.textContent = text;
      row.append(cell);
    }
    row.addEventListener("click", () => select(summary.id));
    return row;
  });
  body.replaceChildren(...rows);
}
