/**
 * MachineConfiguration (firecracker-api.yaml; rules from Firecracker vmm_config/machine_config.rs):
 * PATCH merges; PUT sets every field, absent ones to their defaults, except `cpu_template`, which an absent
 * field leaves as it was (Firecracker turns a PUT into MachineConfigUpdate::from(config), whose
 * cpu_template is None when the body has none; "None" clears it).
 */
import { boolean, ConfigError, serdeExpected, defaulted, integer, objectSchema, oneOf, optional, required, type Check, type ObjectSchema } from "./schema.js";

/** petasan's CPU templates: "host" passes the host CPUID through, "minimal" masks it to a baseline. */
export type CpuTemplate = "host" | "minimal";
/**
 * A configured template: one of Firecracker's static x86 templates (yaml CpuTemplate), or petasan's
 * "minimal"; "None" (or petasan's "host") in a request means no template. No template is stored as an
 * absent field, so GET /machine-config never reports a value outside Firecracker's enum unless the user
 * chose petasan's own "minimal" (as Firecracker, which leaves the field out when no template is set).
 */
export type CpuTemplateName = "C3" | "T2" | "T2S" | "T2CL" | "T2A" | "minimal";
export type HugePages = "None" | "Transparent" | "2M";

export interface MachineConfig {
  vcpu_count: number;
  mem_size_mib: number;
  /** Simultaneous multithreading: vCPUs are presented as sibling pairs. */
  smt: boolean;
  track_dirty_pages: boolean;
  /** Absent: no template (the host's CPUID). Only a parsed request carries "None", meaning "clear it". */
  cpu_template?: CpuTemplateName | "None";
  huge_pages: HugePages;
}

/** PATCH /machine-config: any subset of the fields. */
export type MachineConfigUpdate = Partial<MachineConfig>;

/** Firecracker's MAX_SUPPORTED_VCPUS (vmm_config/machine_config.rs; yaml `maximum: 32`). */
export const MAX_VCPUS = 32;
/** Guest RAM addresses are JS numbers, exact below 2^53 bytes = 2^33 MiB (ARCHITECTURE-EXAMPLES.md section 2). */
export const MAX_MEM_SIZE_MIB = 2 ** 33 - 1;

/** Firecracker's defaults (yaml: 1 vCPU, 128 MiB, no SMT, no template, no huge pages). */
export const DEFAULT_MACHINE_CONFIG: Readonly<MachineConfig> = Object.freeze({
  vcpu_count: 1,
  mem_size_mib: 128,
  smt: false,
  track_dirty_pages: false,
  huge_pages: "None",
});

/** The names a request may give, as stored: Firecracker's x86 templates, its "None", petasan's names. */
const CPU_TEMPLATE_NAMES: Readonly<Record<string, CpuTemplateName | "None">> = {
  None: "None",
  C3: "C3",
  T2: "T2",
  T2S: "T2S",
  T2CL: "T2CL",
  T2A: "T2A",
  host: "None",
  minimal: "minimal",
};

const cpuTemplate: Check<CpuTemplateName | "None"> = (value, path) => {
  if (value === "V1N1") throw new ConfigError(path, "V1N1 is an aarch64 template; petasan runs x86_64 guests");
  const template = typeof value === "string" && Object.hasOwn(CPU_TEMPLATE_NAMES, value) ? CPU_TEMPLATE_NAMES[value] : undefined;
  if (template === undefined) {
    const names = Object.keys(CPU_TEMPLATE_NAMES);
    const serde = typeof value === "string" ? ({ kind: "value", text: `unknown variant \`${value}\`, expected ${serdeExpected(names)}` } as const) : undefined;
    throw new ConfigError(path, `must be one of ${names.map((name) => JSON.stringify(name)).join(", ")}`, "invalid", serde);
  }
  return template;
};

/**
 * The template the VMM applies: none is the host's CPUID; Firecracker's x86 instance-type templates all
 * hide features down to a baseline, which is petasan's "minimal".
 */
export function cpuTemplateOf(config: Pick<MachineConfig, "cpu_template">): CpuTemplate {
  return config.cpu_template === undefined || config.cpu_template === "None" ? "host" : "minimal";
}

const hugePages = oneOf<HugePages>(["None", "Transparent", "2M"]);

// Firecracker's types (vcpu_count: u8, mem_size_mib: usize); the ranges within them are checkMachineConfig's.
const vcpuCount = integer(0, 255, "u8");
const memSizeMib = integer(0, MAX_MEM_SIZE_MIB, "usize");

/** PUT /machine-config and the config file's "machine-config". */
export const machineConfigSchema: ObjectSchema<MachineConfig> = objectSchema<MachineConfig>("MachineConfiguration", {
  vcpu_count: required(vcpuCount),
  mem_size_mib: required(memSizeMib),
  smt: defaulted(boolean, DEFAULT_MACHINE_CONFIG.smt),
  track_dirty_pages: defaulted(boolean, DEFAULT_MACHINE_CONFIG.track_dirty_pages),
  cpu_template: optional(cpuTemplate),
  huge_pages: defaulted(hugePages, DEFAULT_MACHINE_CONFIG.huge_pages),
});

/** PATCH /machine-config: same fields, all optional. */
export const machineConfigUpdateSchema: ObjectSchema<MachineConfigUpdate> = objectSchema<MachineConfigUpdate>(
  "MachineConfiguration",
  {
    vcpu_count: optional(vcpuCount),
    mem_size_mib: optional(memSizeMib),
    smt: optional(boolean),
    track_dirty_pages: optional(boolean),
    cpu_template: optional(cpuTemplate),
    huge_pages: optional(hugePages),
  },
);

/** Firecracker's MachineConfigError texts (vmm_config/machine_config.rs), which its tests match. */
export const INVALID_VCPU_COUNT = `The number of vCPUs must be greater than 0, less than ${MAX_VCPUS} and must be 1 or an even number if SMT is enabled.`;
export const INVALID_MEMORY_SIZE = "The memory size (MiB) is either 0, or not a multiple of the configured page size.";

/** Rules between fields (Firecracker MachineConfig::update); throws a `conflict` ConfigError. */
export function checkMachineConfig(config: MachineConfig): void {
  // With SMT, vCPUs come in sibling pairs, so the count must be 1 or even (yaml PUT description).
  const oddWithSmt = config.smt && config.vcpu_count > 1 && config.vcpu_count % 2 === 1;
  if (config.vcpu_count === 0 || config.vcpu_count > MAX_VCPUS || oddWithSmt) {
    throw new ConfigError("vcpu_count", INVALID_VCPU_COUNT, "conflict");
  }
  // 2 MiB pages (hugetlbfs, and THP to keep alignment) need a whole number of them (yaml PUT description).
  if (config.mem_size_mib === 0 || (config.huge_pages !== "None" && config.mem_size_mib % 2 !== 0)) {
    throw new ConfigError("mem_size_mib", INVALID_MEMORY_SIZE, "conflict");
  }
}

/**
 * Merges a PATCH, or a PUT's fields, into `current` and checks the result (Firecracker MachineConfig::update):
 * fields the update leaves out keep their values, and cpu_template "None" removes the template.
 */
export function applyMachineConfigUpdate(current: MachineConfig, update: MachineConfigUpdate): MachineConfig {
  const merged: MachineConfig = { ...current, ...update };
  if (merged.cpu_template === "None") delete merged.cpu_template;
  checkMachineConfig(merged);
  return merged;
}
