// Snapshot and Restore: two small dialogs for the paths. Snapshot writes the selected VM's state and memory files
// (POST /api/vms/ID/snapshot; the server pauses a running VM for it and resumes it); Restore makes a new VM from
// such a pair (POST /api/vms with {snapshot}), which the list then shows as any other. The server checks every
// path (allowed folders, files in use, files that exist) and says what is wrong.
import { api } from "./api";
import type { VmSummary } from "./types";

let snapshotOf: VmSummary | undefined;

const form = (id: string) => document.getElementById(id) as HTMLFormElement;
const input = (f: HTMLFormElement, name: string) => f.elements.namedItem(name) as HTMLInputElement;

export function setUpSnapshotDialogs(onRestored: (vm: VmSummary) => void): void {
  const snapshotForm = form("snapshot-form");
  const restoreForm = form("restore-form");
  document.getElementById("snapshot-cancel")!.addEventListener("click", () => (document.getElementById("snapshot-dialog") as HTMLDialogElement).close());
  document.getElementById("restore-cancel")!.addEventListener("click", () => (document.getElementById("restore-dialog") as HTMLDialogElement).close());
  document.getElementById("restore-vm")!.addEventListener("click", () => openRestoreDialog(undefined));

  snapshotForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const vm = snapshotOf;
    if (!vm) return;
    const type = (snapshotForm.querySelector("input[name=type]:checked") as HTMLInputElement).value;
    const body = {
      snapshotPath: input(snapshotForm, "snapshot_path").value.trim(),
      memFilePath: input(snapshotForm, "mem_file_path").value.trim(),
      type,
      overwrite: input(snapshotForm, "overwrite").checked,
    };
    await submit("snapshot", () => api("POST", `/api/vms/${encodeURIComponent(vm.id)}/snapshot`, body));
  });

  restoreForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {
      name: input(restoreForm, "name").value,
      snapshot: {
        snapshotPath: input(restoreForm, "snapshot_path").value.trim(),
        memFilePath: input(restoreForm, "mem_file_path").value.trim(),
        resume: input(restoreForm, "resume").checked,
        trackDirtyPages: input(restoreForm, "track_dirty_pages").checked,
      },
    };
    const vm = await submit("restore", () => api<VmSummary>("POST", "/api/vms", body));
    if (vm) onRestored(vm);
  });
}

/** Opens the Snapshot dialog for `vm`, its paths those of its last snapshot or, the first time, beside its kernel. */
export function openSnapshotDialog(vm: VmSummary): void {
  snapshotOf = vm;
  const f = form("snapshot-form");
  document.getElementById("snapshot-vm")!.textContent = vm.name;
  const folder = vm.kernel.slice(0, vm.kernel.lastIndexOf("/") + 1);
  const safeName = vm.name.replace(/[^\w.-]+/g, "_");
  input(f, "snapshot_path").value = vm.lastSnapshot?.snapshotPath ?? `${folder}${safeName}.snap`;
  input(f, "mem_file_path").value = vm.lastSnapshot?.memFilePath ?? `${folder}${safeName}.mem`;
  // Diff snapshots need dirty page tracking: without it the choice is not offered.
  const diff = f.querySelector("input[name=type][value=Diff]") as HTMLInputElement;
  diff.disabled = !vm.trackDirtyPages;
  diff.parentElement!.title = vm.trackDirtyPages ? "" : "needs dirty page tracking (machine-config track_dirty_pages, or “track dirty pages” on restore)";
  (f.querySelector("input[name=type][value=Full]") as HTMLInputElement).checked = true;
  input(f, "overwrite").checked = false;
  open("snapshot");
}

/** Opens the Restore dialog, filled in with `vm`'s last snapshot (or the one it came from) when there is one. */
export function openRestoreDialog(vm: VmSummary | undefined): void {
  const f = form("restore-form");
  const source = vm?.lastSnapshot ?? vm?.restoredFrom;
  if (source) {
    input(f, "snapshot_path").value = source.snapshotPath;
    input(f, "mem_file_path").value = source.memFilePath;
  }
  input(f, "name").value = vm ? `${vm.name}-restored`.slice(0, 64) : "";
  open("restore");
}

function open(which: "snapshot" | "restore"): void {
  document.getElementById(`${which}-error`)!.hidden = true;
  (document.getElementById(`${which}-dialog`) as HTMLDialogElement).showModal();
}

/** Sends the dialog's request; closes it on success, shows the server's one-line error otherwise. */
async function submit<T>(which: "snapshot" | "restore", send: () => Promise<T>): Promise<T | undefined> {
  const error = document.getElementById(`${which}-error`)!;
  const button = document.querySelector<HTMLButtonElement>(`#${which}-form button[type=submit]`)!;
  error.hidden = true;
  button.disabled = true; // a snapshot of a large guest takes a while: one at a time
  try {
    const result = await send();
    (document.getElementById(`${which}-dialog`) as HTMLDialogElement).close();
    return result;
  } catch (e) {
    error.textContent = (e as Error).message;
    error.hidden = false;
    return undefined;
  } finally {
    button.disabled = false;
  }
}
