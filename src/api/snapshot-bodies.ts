/**
 * PUT /snapshot/create and /snapshot/load bodies (firecracker-api.yaml SnapshotCreateParams, SnapshotLoadParams;
 * rules from Firecracker's api_server/request/snapshot.rs). What petasan cannot honour is refused by name.
 */
import {
  arrayOf, boolean, ConfigError, nested, nonEmptyString, objectSchema, oneOf, optional, required, type ObjectSchema,
} from "../config/index.js";

export type SnapshotType = "Full" | "Diff";

export interface SnapshotCreateParams {
  snapshot_type?: SnapshotType;
  snapshot_path: string;
  mem_file_path: string;
}

export interface MemoryBackend {
  backend_type: "File" | "Uffd";
  backend_path: string;
}

export interface NetworkOverride {
  iface_id: string;
  host_dev_name: string;
}

export interface VsockOverride {
  uds_path: string;
}

interface SnapshotLoadBody {
  snapshot_path: string;
  mem_file_path?: string;
  mem_backend?: MemoryBackend;
  track_dirty_pages?: boolean;
  enable_diff_snapshots?: boolean;
  resume_vm?: boolean;
  network_overrides?: NetworkOverride[];
  vsock_override?: VsockOverride;
  clock_realtime?: boolean;
  huge_pages?: "Snapshot" | "None" | "Transparent" | "2M";
}

/** The load request as the VMM takes it: one memory file, the flags resolved. */
export interface SnapshotLoadParams {
  snapshot_path: string;
  mem_file_path: string;
  track_dirty_pages: boolean;
  resume_vm: boolean;
  network_overrides: NetworkOverride[];
  /** The vsock device's socket path instead of the snapshot's. */
  vsock_override?: VsockOverride;
  /** Huge pages of the restored RAM; absent: "Snapshot" (as saved). A 2M result is refused by the load (no Uffd backend). */
  huge_pages?: "Snapshot" | "None" | "Transparent" | "2M";
}

export const snapshotCreateSchema: ObjectSchema<SnapshotCreateParams> = objectSchema<SnapshotCreateParams>("SnapshotCreateParams", {
  snapshot_type: optional(oneOf<SnapshotType>(["Full", "Diff"])),
  snapshot_path: required(nonEmptyString),
  mem_file_path: required(nonEmptyString),
});

const memoryBackendSchema = objectSchema<MemoryBackend>("MemoryBackend", {
  backend_type: required(oneOf<MemoryBackend["backend_type"]>(["File", "Uffd"])),
  backend_path: required(nonEmptyString),
});

const networkOverrideSchema = objectSchema<NetworkOverride>("NetworkOverride", {
  iface_id: required(nonEmptyString),
  host_dev_name: required(nonEmptyString),
});

const vsockOverrideSchema = objectSchema<VsockOverride>("VsockOverride", {
  uds_path: required(nonEmptyString),
});

const snapshotLoadBodySchema = objectSchema<SnapshotLoadBody>(
  "SnapshotLoadParams",
  {
    snapshot_path: required(nonEmptyString),
    mem_file_path: optional(nonEmptyString),
    mem_backend: optional(nested(memoryBackendSchema)),
    track_dirty_pages: optional(boolean),
    enable_diff_snapshots: optional(boolean),
    resume_vm: optional(boolean),
    network_overrides: optional(arrayOf(nested(networkOverrideSchema))),
    vsock_override: optional(nested(vsockOverrideSchema)),
    clock_realtime: optional(boolean),
    huge_pages: optional(oneOf<NonNullable<SnapshotLoadBody["huge_pages"]>>(["Snapshot", "None", "Transparent", "2M"])),
  },
);

/** Checks a load body; the messages for the memory fields are Firecracker's. */
export const snapshotLoadSchema: ObjectSchema<SnapshotLoadParams> = {
  ...(snapshotLoadBodySchema as unknown as ObjectSchema<SnapshotLoadParams>),
  parse(value, path = "") {
    const b = snapshotLoadBodySchema.parse(value, path);
    if (b.mem_file_path === undefined && b.mem_backend === undefined) throw new ConfigError("", "missing field: either `mem_backend` or `mem_file_path` is required");
    if (b.mem_file_path !== undefined && b.mem_backend !== undefined) throw new ConfigError("", "too many fields: either `mem_backend` or `mem_file_path` exclusively is required");
    if (b.mem_backend?.backend_type === "Uffd") throw new ConfigError("mem_backend.backend_type", "Uffd is not supported by petasan: restore maps the memory file (File)");
    if (b.clock_realtime) throw new ConfigError("clock_realtime", "not supported by petasan: kvmclock resumes from where it was saved");
    return {
      snapshot_path: b.snapshot_path,
      mem_file_path: b.mem_file_path ?? b.mem_backend!.backend_path,
      track_dirty_pages: b.track_dirty_pages ?? b.enable_diff_snapshots ?? false,
      resume_vm: b.resume_vm ?? false,
      network_overrides: b.network_overrides ?? [],
      ...(b.vsock_override && { vsock_override: b.vsock_override }),
      ...(b.huge_pages && { huge_pages: b.huge_pages }),
    };
  },
};
