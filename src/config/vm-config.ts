/**
 * The full VM configuration: the body of GET /vm/config (yaml FullVmConfiguration) and the
 * --config-file format, with Firecracker's kebab-case keys (vmm resources.rs `VmmConfig`).
 */
import { balloonSchema, type BalloonConfig } from "./balloon.js";
import { bootSourceSchema, type BootSourceConfig } from "./boot-source.js";
import { driveSchema, type DriveConfig } from "./drive.js";
import { entropySchema, type EntropyConfig } from "./entropy.js";
import { loggerSchema, type LoggerConfig } from "./logger.js";
import { DEFAULT_MACHINE_CONFIG, machineConfigSchema, type MachineConfig } from "./machine-config.js";
import { metricsSchema, type MetricsConfig } from "./metrics.js";
import { networkInterfaceSchema, type NetworkInterfaceConfig } from "./network-interface.js";
import { vsockSchema, type VsockConfig } from "./vsock.js";
import { mmdsConfigSchema, type MmdsConfig } from "./mmds.js";
import { arrayOf, defaulted, nested, objectSchema, optional, required, type ObjectSchema } from "./schema.js";

/** A complete, bootable configuration (what --config-file holds and the VMM builds from). */
export interface VmConfig {
  "boot-source": BootSourceConfig;
  "machine-config": MachineConfig;
  /** The root drive, if any, comes first. */
  drives: DriveConfig[];
  "network-interfaces": NetworkInterfaceConfig[];
  entropy?: EntropyConfig;
  vsock?: VsockConfig;
  "mmds-config"?: MmdsConfig;
  balloon?: BalloonConfig;
  logger?: LoggerConfig;
  metrics?: MetricsConfig;
}

/** GET /vm/config: as VmConfig, but the boot source may not be configured yet. */
export type FullVmConfiguration = Omit<VmConfig, "boot-source"> & { "boot-source"?: BootSourceConfig };

/** Firecracker resources petasan does not implement; naming them gives a clear refusal. */
const UNSUPPORTED_RESOURCES = {
  "cpu-config": "custom CPU templates (machine-config's cpu_template is supported)",
  "memory-hotplug": "memory hotplug (virtio-mem)",
  pmem: "virtio-pmem devices",
};

/** Checks the shape of a config file; cross-item rules are VmResources' (see parseVmConfig). */
export const vmConfigSchema: ObjectSchema<VmConfig> = objectSchema<VmConfig>(
  "FullVmConfiguration",
  {
    "boot-source": required(nested(bootSourceSchema)),
    "machine-config": defaulted(nested(machineConfigSchema), { ...DEFAULT_MACHINE_CONFIG }),
    drives: defaulted(arrayOf(nested(driveSchema)), []),
    "network-interfaces": defaulted(arrayOf(nested(networkInterfaceSchema)), []),
    entropy: optional(nested(entropySchema)),
    vsock: optional(nested(vsockSchema)),
    "mmds-config": optional(nested(mmdsConfigSchema)),
    balloon: optional(nested(balloonSchema)),
    logger: optional(nested(loggerSchema)),
    metrics: optional(nested(metricsSchema)),
  },
  UNSUPPORTED_RESOURCES,
);
