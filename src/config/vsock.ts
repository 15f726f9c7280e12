/** Vsock (firecracker-api.yaml; Firecracker vmm_config/vsock.rs): a virtio-vsock device backed by unix sockets. */
import { integer, nonEmptyString, objectSchema, optional, required, string, type ObjectSchema } from "./schema.js";

export interface VsockConfig {
  /** Deprecated in Firecracker and ignored there too; kept so GET /vm/config shows what was given. */
  vsock_id?: string;
  /** The guest's CID: 0-2 are reserved (virtio 1.2 §5.10.4), and Linux's are 32-bit. */
  guest_cid: number;
  /** Host-initiated connections: petasan listens here. Guest connections to port P go to `<uds_path>_P`. */
  uds_path: string;
}

export const vsockSchema: ObjectSchema<VsockConfig> = objectSchema<VsockConfig>("Vsock", {
  vsock_id: optional(string),
  guest_cid: required(integer(3, 0xffff_ffff)),
  uds_path: required(nonEmptyString),
});
