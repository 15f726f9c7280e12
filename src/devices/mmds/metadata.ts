/**
 * The guest's view of the MMDS data store (Firecracker mmds/data_store.rs get_value): a JSON pointer
 * lookup answered as JSON or in EC2 IMDS's plain-text listing. The API thread owns the store and posts
 * each new version here; this side only reads.
 */

export type MmdsVersion = "V1" | "V2";
export type OutputFormat = "json" | "imds";

// MmdsDatastoreError texts (mmds/data_store.rs).
export const MMDS_NOT_FOUND = "The MMDS resource does not exist.";
export const MMDS_UNSUPPORTED_VALUE_TYPE = "Cannot retrieve value. The value has an unsupported type.";

export type LookupResult = { ok: true; body: string } | { ok: false; error: "not-found" | "unsupported-type" };

export class MmdsMetadata {
  /** JSON null until the API's first PUT /mmds, as in Firecracker. */
  private data: unknown = null;

  constructor(
    public version: MmdsVersion = "V1",
    /** EC2 IMDS compatibility: always answer in the IMDS format, whatever the Accept header says. */
    public imdsCompat = false,
  ) {}

  /** Replaces the data with the API thread's latest version (its JSON text). */
  setDataText(text: string): void {
    this.data = JSON.parse(text);
  }

  /** `path` is a JSON pointer (RFC 6901) with at most one trailing "/" (which is ignored). */
  lookup(path: string, format: OutputFormat): LookupResult {
    const pointer = path.endsWith("/") ? path.slice(0, -1) : path;
    const found = resolvePointer(this.data, pointer);
    if (!found.ok) return { ok: false, error: "not-found" };
    if (this.imdsCompat || format === "imds") return formatImds(found.value);
    return { ok: true, body: canonicalJson(found.value) };
  }
}

/**
 * IMDS listing: an object's keys one per line (a nested object's with a trailing "/"), a string is
 * itself, anything else cannot be shown.
 */
function formatImds(value: unknown): LookupResult {
  if (isPlainObject(value)) {
    const keys = Object.keys(value).sort(compareBytes);
    return { ok: true, body: keys.map((k) => (isPlainObject(value[k]) ? `${k}/` : k)).join("\n") };
  }
  if (typeof value === "string") return { ok: true, body: value };
  return { ok: false, error: "unsupported-type" };
}

/** RFC 6901 evaluation, as serde_json's Value::pointer: "" is the whole document, array indexes without leading zeros. */
function resolvePointer(doc: unknown, pointer: string): { ok: true; value: unknown } | { ok: false } {
  if (pointer === "") return { ok: true, value: doc };
  if (!pointer.startsWith("/")) return { ok: false };
  let current = doc;
  for (const raw of pointer.slice(1).split("/")) {
    const token = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (isPlainObject(current)) {
      if (!Object.hasOwn(current, token)) return { ok: false };
      current = current[token];
    } else if (Array.isArray(current)) {
      if (!/^(0|[1-9][0-9]*)$/.test(token) || Number(token) >= current.length) return { ok: false };
      current = current[Number(token)];
    } else {
      return { ok: false };
    }
  }
  return { ok: true, value: current };
}

/** JSON with keys in byte order, as serde_json writes a Value (its maps are BTreeMaps). */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (isPlainObject(value)) {
    const keys = Object.keys(value).sort(compareBytes);
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
