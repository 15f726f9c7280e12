/**
 * A tiny hand-written validator toolkit: each config is one `ObjectSchema` that both checks a
 * parsed JSON value and lists its field names (so a test can compare them with
 * firecracker-api.yaml). Errors name the exact field path, e.g. `drives[0].path_on_host`.
 */

/**
 * The same problem as serde (Firecracker's JSON decoder) describes it, for the API's fault messages, which
 * clients and Firecracker's tests match: ``missing field `vcpu_count` ``, ``unknown field `x`, expected ...``,
 * ``invalid type: string "2", expected u8``. The API adds serde's "at line L column C" from the body.
 */
export type SerdeDetail =
  /** Located at the end of the object missing the field. */
  | { kind: "missing"; text: string }
  /** Located at the end of the unknown key. */
  | { kind: "key"; text: string }
  /** Located at the end of the offending value. */
  | { kind: "value"; text: string };

/** A config value that breaks the schema (`invalid`) or a rule between values (`conflict`). */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(
    /** Dotted path of the offending field ("" for the whole value). */
    readonly field: string,
    readonly problem: string,
    readonly code: "invalid" | "conflict" = "invalid",
    readonly serde?: SerdeDetail,
  ) {
    super(field === "" ? problem : `${field}: ${problem}`);
  }
}

/** serde's list of what it expected: "`a`", "`a` or `b`", "one of `a`, `b`, `c`". */
export function serdeExpected(names: readonly string[]): string {
  const quoted = names.map((name) => `\`${name}\``);
  if (quoted.length <= 1) return quoted[0] ?? "nothing";
  if (quoted.length === 2) return `${quoted[0]} or ${quoted[1]}`;
  return `one of ${quoted.join(", ")}`;
}

/** serde's serde::de::Unexpected for a JSON value: `string "x"`, ``integer `5` ``, `map`, ... */
export function serdeUnexpected(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "string") return `string ${JSON.stringify(value)}`;
  if (typeof value === "boolean") return `boolean \`${value}\``;
  if (typeof value === "number") return Number.isInteger(value) ? `integer \`${value}\`` : `floating point \`${value}\``;
  return Array.isArray(value) ? "sequence" : "map";
}

function invalidType(value: unknown, expected: string): SerdeDetail {
  return { kind: "value", text: `invalid type: ${serdeUnexpected(value)}, expected ${expected}` };
}

/** Checks one JSON value and returns it typed (or throws a ConfigError naming `path`). */
export type Check<T> = (value: unknown, path: string) => T;

/** One property of an object schema: its check and whether it may be absent. */
export interface Field<T> {
  readonly required: boolean;
  /** Called with `undefined` when the property is absent (or JSON null). */
  parse(value: unknown, path: string): T;
}

export interface ObjectSchema<T> {
  /** The swagger definition this schema mirrors, e.g. "MachineConfiguration". */
  readonly definition: string;
  readonly fields: readonly string[];
  readonly requiredFields: readonly string[];
  /** Properties Firecracker defines that petasan refuses with a reason. */
  readonly unsupportedFields: readonly string[];
  parse(value: unknown, path?: string): T;
}

export function fieldPath(parent: string, key: string): string {
  return parent === "" ? key : `${parent}.${key}`;
}

/** The last property name of a field path ("rate_limiter.bandwidth.size" -> "size"). */
function lastName(path: string): string {
  return path.slice(path.lastIndexOf(".") + 1);
}

/** Absent properties and JSON null both mean "not given", as with serde's `Option`. */
function isAbsent(value: unknown): boolean {
  return value === undefined || value === null;
}

export function required<T>(check: Check<T>): Field<T> {
  return {
    required: true,
    parse(value, path) {
      if (isAbsent(value)) {
        throw new ConfigError(path, "missing required field", "invalid", { kind: "missing", text: `missing field \`${lastName(path)}\`` });
      }
      return check(value, path);
    },
  };
}

export function optional<T>(check: Check<T>): Field<T | undefined> {
  return { required: false, parse: (value, path) => (isAbsent(value) ? undefined : check(value, path)) };
}

/** An optional property that reads as `fallback` when absent. */
export function defaulted<T>(check: Check<T>, fallback: T): Field<T> {
  return { required: false, parse: (value, path) => (isAbsent(value) ? fallback : check(value, path)) };
}

export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function jsonObject(value: unknown, path: string): Record<string, unknown> {
  if (!isJsonObject(value)) throw new ConfigError(path, "must be a JSON object", "invalid", invalidType(value, "a JSON object"));
  return value;
}

/**
 * Builds an object schema. `fields` must list every property of T; properties that parse to
 * `undefined` are left out of the result. `unsupported` maps Firecracker property names petasan
 * knows but refuses to the feature they need, named in the error ("petasan does not support <feature> yet").
 */
export function objectSchema<T extends object>(
  definition: string,
  fields: { readonly [K in keyof T]-?: Field<T[K]> },
  unsupported: Readonly<Record<string, string>> = {},
): ObjectSchema<T> {
  const entries = Object.entries(fields) as [string, Field<unknown>][];
  const names = entries.map(([name]) => name);
  const known = new Set(names);
  return {
    definition,
    fields: names,
    requiredFields: entries.filter(([, field]) => field.required).map(([name]) => name),
    unsupportedFields: Object.keys(unsupported),
    parse(value, path = "") {
      const input = jsonObject(value, path);
      for (const key of Object.keys(input)) {
        if (known.has(key)) continue;
        const reason = Object.hasOwn(unsupported, key) ? unsupported[key] : undefined;
        if (reason !== undefined) {
          if (isAbsent(input[key])) continue;
          throw new ConfigError(fieldPath(path, key), `petasan does not support ${reason} yet`);
        }
        throw new ConfigError(fieldPath(path, key), `unknown field; expected one of: ${names.join(", ")}`, "invalid", {
          kind: "key",
          text: `unknown field \`${key}\`, expected ${serdeExpected(names)}`,
        });
      }
      const output: Record<string, unknown> = {};
      for (const [name, field] of entries) {
        const parsed = field.parse(Object.hasOwn(input, name) ? input[name] : undefined, fieldPath(path, name));
        if (parsed !== undefined) output[name] = parsed;
      }
      return output as T;
    },
  };
}

/** Uses an object schema as the check of a nested property. */
export function nested<T>(schema: ObjectSchema<T>): Check<T> {
  return (value, path) => schema.parse(value, path);
}

export function string(value: unknown, path: string): string {
  if (typeof value !== "string") throw new ConfigError(path, "must be a string", "invalid", invalidType(value, "a string"));
  return value;
}

export function nonEmptyString(value: unknown, path: string): string {
  const text = string(value, path);
  if (text === "") throw new ConfigError(path, "must not be empty");
  return text;
}

export function boolean(value: unknown, path: string): boolean {
  if (typeof value !== "boolean") throw new ConfigError(path, "must be true or false", "invalid", invalidType(value, "a boolean"));
  return value;
}

/** Rust's unsigned integer types, as Firecracker declares its fields, and the largest value of each here. */
const RUST_UNSIGNED_MAX = { u8: 255, u16: 65535, u32: 2 ** 32 - 1, u64: Number.MAX_SAFE_INTEGER, usize: Number.MAX_SAFE_INTEGER } as const;
export type RustUnsigned = keyof typeof RUST_UNSIGNED_MAX;

/**
 * An integer in [min, max]; both bounds must be safe integers. `rustType` is the type Firecracker declares,
 * so that a value it cannot hold gets serde's wording (``invalid value: integer `-2`, expected u8``).
 */
export function integer(min: number, max: number, rustType?: RustUnsigned): Check<number> {
  return (value, path) => {
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
      let serde: SerdeDetail | undefined;
      if (rustType !== undefined) {
        const fits = typeof value === "number" && Number.isInteger(value);
        serde = !fits
          ? invalidType(value, rustType)
          : value < 0 || value > RUST_UNSIGNED_MAX[rustType]
            ? { kind: "value", text: `invalid value: ${serdeUnexpected(value)}, expected ${rustType}` }
            : undefined;
      }
      throw new ConfigError(path, `must be an integer between ${min} and ${max}`, "invalid", serde);
    }
    return value;
  };
}

export function oneOf<const V extends string>(values: readonly V[]): Check<V> {
  return (value, path) => {
    if (typeof value !== "string" || !(values as readonly string[]).includes(value)) {
      const serde: SerdeDetail | undefined =
        typeof value === "string" ? { kind: "value", text: `unknown variant \`${value}\`, expected ${serdeExpected(values)}` } : undefined;
      throw new ConfigError(path, `must be one of ${values.map((v) => JSON.stringify(v)).join(", ")}`, "invalid", serde);
    }
    return value as V;
  };
}

export function arrayOf<T>(check: Check<T>): Check<T[]> {
  return (value, path) => {
    if (!Array.isArray(value)) throw new ConfigError(path, "must be a JSON array", "invalid", invalidType(value, "a sequence"));
    return value.map((item, index) => check(item, `${path}[${index}]`));
  };
}

/** A JSON object whose values are all strings (e.g. metrics `properties`). */
export function stringMap(value: unknown, path: string): Record<string, string> {
  const input = jsonObject(value, path);
  return Object.fromEntries(Object.entries(input).map(([key, item]) => [key, string(item, fieldPath(path, key))]));
}

/**
 * Firecracker's rule for API resource ids (api_server/parsed_request.rs `checked_id`): non-empty,
 * only alphanumeric characters and underscores.
 */
const RESOURCE_ID = /^[\p{L}\p{N}_]+$/u;

export function isResourceId(text: string): boolean {
  return RESOURCE_ID.test(text);
}

export function resourceId(value: unknown, path: string): string {
  const text = string(value, path);
  if (!isResourceId(text)) {
    throw new ConfigError(path, "must be non-empty and contain only alphanumeric characters and underscores");
  }
  return text;
}
