// The console's page: the VM list and the selected VM, kept up to date by the /api/events WebSocket.
import "@xterm/xterm/css/xterm.css";
import "uplot/dist/uPlot.min.css";
import "./style.css";
import { socketUrl } from "./api";
import { setUpCreateDialog } from "./create-dialog";
import { setUpSnapshotDialogs } from "./snapshot-dialogs";
import { renderList, type ListedVm } from "./vm-list";
import { VmView } from "./vm-view";
import type { ServerEvent, StatsSample, VmSummary } from "./types";

const HISTORY = 300;
const vms = new Map<string, ListedVm>();
const stats = new Map<string, StatsSample[]>();
let view: VmView | undefined;

function selectedId(): string | undefined {
  return location.hash.length > 1 ? decodeURIComponent(location.hash.slice(1)) : undefined;
}

function select(id: string | undefined): void {
  if (id !== selectedId()) history.replaceState(null, "", id === undefined ? location.pathname + location.search : `#${encodeURIComponent(id)}`);
  render();
}

function setVms(list: VmSummary[]): void {
  const now = performance.now();
  vms.clear();
  for (const summary of list) vms.set(summary.id, { summary, receivedAt: now });
  for (const id of stats.keys()) if (!vms.has(id)) stats.delete(id);
  render();
}

function render(): void {
  const id = selectedId();
  renderList(document.querySelector("#vm-list tbody")!, [...vms.values()], id, select);
  document.getElementById("empty")!.hidden = vms.size > 0;
  const vm = id === undefined ? undefined : vms.get(id);
  if (view && view.id !== vm?.summary.id) {
    view.dispose();
    view = undefined;
  }
  if (vm && !view) view = new VmView(vm, stats.get(vm.summary.id) ?? [], () => select(undefined));
  else if (vm && view) view.update(vm);
}

function onEvent(event: ServerEvent): void {
  switch (event.type) {
    case "hello":
      stats.clear();
      for (const [id, samples] of Object.entries(event.stats)) stats.set(id, samples);
      setVms(event.vms);
      break;
    case "vms":
      setVms(event.vms);
      break;
    case "sample": {
      const samples = stats.get(event.id) ?? [];
      samples.push(event.sample);
      if (samples.length > HISTORY) samples.shift();
      stats.set(event.id, samples);
      const vm = vms.get(event.id);
      if (vm) {
        vm.summary.exitsTotal = event.sample.exitsTotal;
        if (view?.id === event.id) view.samples(samples);
      }
      renderList(document.querySelector("#vm-list tbody")!, [...vms.values()], selectedId(), select);
      break;
    }
  }
}

/** The events stream, reconnecting after a drop (the server restarts, the laptop sleeps). */
function connect(): void {
  const status = document.getElementById("connection")!;
  const socket = new WebSocket(socketUrl("/api/events"));
  socket.onopen = () => {
    status.textContent = "live";
    status.className = "connection live";
  };
  socket.onmessage = (message) => onEvent(JSON.parse(message.data as string) as ServerEvent);
  socket.onclose = () => {
    status.textContent = "disconnected, retrying…";
    status.className = "connection down";
    setTimeout(connect, 2000);
  };
}

document.addEventListener("DOMContentLoaded", () => {
  setUpCreateDialog((vm) => select(vm.id));
  setUpSnapshotDialogs((vm) => select(vm.id));
  document.getElementById("actions")!.addEventListener("click", (event) => {
    const action = (event.target as HTMLElement).closest("button")?.dataset.action;
    if (action && view) void view.act(action);
  });
  window.addEventListener("hashchange", render);
  // Uptimes move on between updates.
  setInterval(() => {
    const id = selectedId();
    renderList(document.querySelector("#vm-list tbody")!, [...vms.values()], id, select);
    const vm = id === undefined ? undefined : vms.get(id);
    if (vm && view) view.tick(vm);
  }, 1000);
  connect();
});
