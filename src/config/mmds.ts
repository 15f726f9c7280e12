/**
 * MMDS, Firecracker's microVM metadata service: MmdsConfig (firecracker-api.yaml; Firecracker
 * vmm_config/mmds.rs) and the data store the API edits (Firecracker mmds/data_store.rs): PUT replaces
 * it, PATCH applies a JSON merge patch (RFC 7396), both refused past the size limit. The guest reads a
 * copy of the store on the device thread; this one, on the API thread, is the source of truth.
 */
import { ConfigError, arrayOf, boolean, defaulted, oneOf, objectSchema, optional, required, string, type Check, type ObjectSchema } from "./schema.js";

export type MmdsVersion = "V1" | "V2";

export interface MmdsConfig {
  version: MmdsVersion;
  /** Interfaces whose ARP and IPv4 frames for `ipv4_address` are answered by MMDS instead of the tap. */
  network_interfaces: string[];
  ipv4_address?: string;
  imds_compat: boolean;
}

/** Firecracker's MmdsNetworkStack default address (mmds/ns.rs). */
export const DEFAULT_MMDS_IPV4_ADDRESS = "169.254.169.254";
/** Firecracker's default --mmds-size-limit: its API payload limit, HTTP_MAX_PAYLOAD_SIZE (vmm/src/lib.rs). */
export const DEFAULT_MMDS_SIZE_LIMIT = 51200;

const ipv4Text: Check<string> = (value, path) => {
  const text = string(value, path);
  if (parseIpv4(text) === undefined) throw new ConfigError(path, "must be an IPv4 address like \"169.254.169.254\"");
  return text;
};

export const mmdsConfigSchema: ObjectSchema<MmdsConfig> = objectSchema<MmdsConfig>("MmdsConfig", {
  version: defaulted(oneOf(["V1", "V2"] as const), "V1"),
  network_interfaces: required(arrayOf(string)),
  ipv4_address: optional(ipv4Text),
  imds_compat: defaulted(boolean, false),
});

/** Dotted quad to its four octets, or undefined. */
export function parseIpv4(text: string): number[] | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (m === null) return undefined;
  const octets = m.slice(1).map(Number);
  return octets.every((o) => o <= 255) ? octets : undefined;
}

// MmdsConfigError texts (vmm_config/mmds.rs), behind rpc_interface.rs's prefix, whose triple M is Firecracker's own.
export const MMDS_CONFIG_ERROR_PREFIX = "MMMDS config error";
export const MMDS_EMPTY_IFACE_LIST = "The list of network interface IDs that allow forwarding MMDS requests is empty.";
export const MMDS_INVALID_IPV4 = "The MMDS IPv4 address is not link local.";
export const MMDS_INVALID_IFACE_ID =
  "The list of network interface IDs provided contains at least one ID that does not correspond to any existing network interface.";

/**
 * Firecracker's checks of PUT /mmds/config (resources.rs set_mmds_network_stack_config): a link-local
 * address outside 169.254.0.x and 169.254.255.x (utils/net/ipv4addr.rs), at least one interface, each existing.
 * Returns the message of the first rule broken, or undefined.
 */
export function mmdsConfigProblem(config: MmdsConfig, ifaceIds: readonly string[]): string | undefined {
  if (config.ipv4_address !== undefined) {
    const [a, b, c] = parseIpv4(config.ipv4_address) ?? [];
    if (a !== 169 || b !== 254 || c === 0 || c === 255) return MMDS_INVALID_IPV4;
  }
  if (config.network_interfaces.length === 0) return MMDS_EMPTY_IFACE_LIST;
  if (!config.network_interfaces.every((id) => ifaceIds.includes(id))) return MMDS_INVALID_IFACE_ID;
  return undefined;
}

// MmdsDatastoreError texts (mmds/data_store.rs).
export const MMDS_LIMIT_EXCEEDED = "The MMDS patch request doesn't fit.";
export const MMDS_NOT_INITIALIZED = "The MMDS data store is not initialized.";

/** Why the store refused a change: `limit` is answered with 413, `not-initialized` with 400. */
export class MmdsStoreError extends Error {
  override readonly name = "MmdsStoreError";
  constructor(readonly kind: "limit" | "not-initialized") {
    super(kind === "limit" ? MMDS_LIMIT_EXCEEDED : MMDS_NOT_INITIALIZED);
  }
}

/** The MMDS data: JSON null until the first PUT, as in Firecracker. */
export class MmdsStore {
  private data: unknown = null;
  private initialized = false;

  constructor(readonly sizeLimit = DEFAULT_MMDS_SIZE_LIMIT) {}

  get value(): unknown {
    return structuredClone(this.data);
  }

  /** The store as the guest and GET /mmds see it: serde_json's text, keys sorted. */
  get text(): string {
    return canonicalJson(this.data);
  }

  put(value: unknown): void {
    this.checkSize(value);
    this.data = structuredClone(value);
    this.initialized = true;
  }

  /** PATCH /mmds: refused before the first PUT; a patched store past the limit leaves the store as it was. */
  patch(patch: unknown): void {
    if (!this.initialized) throw new MmdsStoreError("not-initialized");
    const next = jsonMergePatch(structuredClone(this.data), patch);
    this.checkSize(next);
    this.data = next;
  }

  private checkSize(value: unknown): void {
    if (Buffer.byteLength(canonicalJson(value)) > this.sizeLimit) throw new MmdsStoreError("limit");
  }
}

/** RFC 7396 §2: an object patch merges key by key, null removes a key; any other patch replaces the target. */
export function jsonMergePatch(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return structuredClone(patch);
  const out: Record<string, unknown> = isPlainObject(target) ? target : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = jsonMergePatch(Object.hasOwn(out, key) ? out[key] : null, value);
  }
  return out;
}

/**
 * JSON text with object keys in byte order, as serde_json writes a Value (its maps are BTreeMaps), so
 * sizes, GET /mmds and the guest's answers match Firecracker's byte for byte for the same data.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (isPlainObject(value)) {
    const keys = Object.keys(value).sort(compareBytes);
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/** UTF-8 byte order (Rust's String ordering); equal to UTF-16 order except around astral characters. */
export function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
