/** BootSource (firecracker-api.yaml; Firecracker vmm_config/boot_source.rs). */
import { nonEmptyString, objectSchema, optional, required, string, type ObjectSchema } from "./schema.js";

export interface BootSourceConfig {
  /** Host path of the guest kernel image. */
  kernel_image_path: string;
  /** Kernel command line; absent means the VMM's default command line. */
  boot_args?: string;
  /** Host path of an initrd image. */
  initrd_path?: string;
}

export const bootSourceSchema: ObjectSchema<BootSourceConfig> = objectSchema<BootSourceConfig>("BootSource", {
  kernel_image_path: required(nonEmptyString),
  boot_args: optional(string),
  initrd_path: optional(nonEmptyString),
});
