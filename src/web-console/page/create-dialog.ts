// "New VM": a form for the common case (kernel, boot arguments, vCPUs, memory, a root drive), or a Firecracker
// config JSON pasted or uploaded. The server checks the config (and the paths it names) and says what is wrong.
import { api } from "./api";
import type { VmSummary } from "./types";

export function setUpCreateDialog(onCreated: (vm: VmSummary) => void): void {
  const dialog = document.getElementById("create-dialog") as HTMLDialogElement;
  const form = document.getElementById("create-form") as HTMLFormElement;
  const error = document.getElementById("create-error")!;
  const field = <T extends HTMLInputElement | HTMLTextAreaElement>(name: string) => form.elements.namedItem(name) as T;
  const mode = () => (form.querySelector("input[name=mode]:checked") as HTMLInputElement).value;

  for (const radio of form.querySelectorAll<HTMLInputElement>("input[name=mode]")) {
    radio.addEventListener("change", () => {
      document.getElementById("mode-form")!.hidden = mode() !== "form";
      document.getElementById("mode-json")!.hidden = mode() !== "json";
      field<HTMLInputElement>("kernel").required = mode() === "form";
    });
  }
  field<HTMLInputElement>("config_file").addEventListener("change", async () => {
    const file = field<HTMLInputElement>("config_file").files?.[0];
    if (file) field<HTMLTextAreaElement>("config").value = await file.text();
  });
  document.getElementById("new-vm")!.addEventListener("click", () => {
    error.hidden = true;
    dialog.showModal();
  });
  document.getElementById("create-cancel")!.addEventListener("click", () => dialog.close());

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    const start = field<HTMLInputElement>("start").checked;
    let body: { config: unknown; name?: string; start: boolean };
    if (mode() === "form") {
      const drive = field<HTMLInputElement>("drive").value.trim();
      body = {
        name: field<HTMLInputElement>("name").value,
        start,
        config: {
          "boot-source": { kernel_image_path: field<HTMLInputElement>("kernel").value.trim(), boot_args: field<HTMLInputElement>("boot_args").value },
          "machine-config": { vcpu_count: Number(field<HTMLInputElement>("vcpus").value), mem_size_mib: Number(field<HTMLInputElement>("memory").value) },
          drives: drive ? [{ drive_id: "rootfs", path_on_host: drive, is_root_device: true, is_read_only: field<HTMLInputElement>("drive_ro").checked }] : [],
        },
      };
    } else {
      // Sent as text: the server parses it and points at the line and column of a JSON mistake.
      body = { name: field<HTMLInputElement>("json_name").value, start, config: field<HTMLTextAreaElement>("config").value };
    }
    try {
      const vm = await api<VmSummary>("POST", "/api/vms", body);
      dialog.close();
      onCreated(vm);
    } catch (e) {
      error.textContent = (e as Error).message;
      error.hidden = false;
    }
  });
}
