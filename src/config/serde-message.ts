/**
 * Firecracker's fault messages for a body that does not deserialize are serde_json's: the problem and where
 * the decoder was when it found it, e.g. ``missing field `vcpu_count` at line 1 column 21``. Clients and
 * Firecracker's own tests (tests/integration_tests/functional/test_api.py) match on these texts, so the
 * API words schema errors the same way. serde_json's column counts the bytes of the line read so far,
 * i.e. up to and including the last character it consumed: the closing brace of an object missing a
 * field, the closing quote of an unknown key, the last character of a value of the wrong type.
 */
import type { ConfigError } from "./schema.js";

/** serde_json's text for `error` in the JSON body `text`, or undefined when serde has no such error. */
export function serdeMessage(error: ConfigError, text: string): string | undefined {
  if (error.serde === undefined) return undefined;
  const path = parseFieldPath(error.field);
  const offset =
    error.serde.kind === "missing"
      ? locateJson(text, path.slice(0, -1), "value")
      : locateJson(text, path, error.serde.kind === "key" ? "key" : "value");
  if (offset === undefined) return error.serde.text;
  const lineStart = text.lastIndexOf("\n", offset) + 1;
  const line = text.slice(0, lineStart).split("\n").length;
  return `${error.serde.text} at line ${line} column ${Buffer.byteLength(text.slice(lineStart, offset + 1))}`;
}

/** "drives[0].rate_limiter.ops" -> ["drives", 0, "rate_limiter", "ops"]. */
function parseFieldPath(field: string): (string | number)[] {
  if (field === "") return [];
  return field.split(".").flatMap((part) => {
    const [name, ...indices] = part.split("[");
    return [...(name === "" ? [] : [name]), ...indices.map((index) => Number(index.replace("]", "")))];
  });
}

/**
 * In valid JSON `text`, the offset of the last character of the value at `path` ("value"), or of the
 * closing quote of the last property's key ("key"); undefined if the path is not there. Walks only along
 * the path and skips other values by scanning, so any nesting depth is fine.
 */
function locateJson(text: string, path: readonly (string | number)[], part: "value" | "key"): number | undefined {
  let i = skipWhitespace(text, 0);
  for (let depth = 0; depth < path.length; depth++) {
    const step = path[depth];
    const open = typeof step === "string" ? "{" : "[";
    if (text[i] !== open) return undefined;
    i = skipWhitespace(text, i + 1);
    for (let index = 0; ; index++) {
      if (text[i] === "}" || text[i] === "]" || i >= text.length) return undefined;
      if (typeof step === "string") {
        const keyEnd = endOfValue(text, i);
        const key = JSON.parse(text.slice(i, keyEnd + 1)) as string;
        const valueStart = skipWhitespace(text, skipWhitespace(text, keyEnd + 1) + 1);
        if (key === step) {
          if (depth === path.length - 1 && part === "key") return keyEnd;
          i = valueStart;
          break;
        }
        i = valueStart;
      } else if (index === step) {
        break;
      }
      i = skipWhitespace(text, endOfValue(text, i) + 1);
      if (text[i] === ",") i = skipWhitespace(text, i + 1);
    }
  }
  return i < text.length ? endOfValue(text, i) : undefined;
}

function skipWhitespace(text: string, i: number): number {
  while (i < text.length && " \t\n\r".includes(text[i])) i++;
  return i;
}

/** The offset of the last character of the JSON value starting at `i`. */
function endOfValue(text: string, i: number): number {
  const first = text[i];
  if (first === '"') return endOfString(text, i);
  if (first === "{" || first === "[") {
    let depth = 0;
    for (let j = i; j < text.length; j++) {
      const char = text[j];
      if (char === '"') j = endOfString(text, j);
      else if (char === "{" || char === "[") depth++;
      else if ((char === "}" || char === "]") && --depth === 0) return j;
    }
    return text.length - 1;
  }
  let j = i;
  while (j + 1 < text.length && /[-+.0-9a-zA-Z]/.test(text[j + 1])) j++;
  return j;
}

function endOfString(text: string, start: number): number {
  for (let j = start + 1; j < text.length; j++) {
    if (text[j] === "\\") j++;
    else if (text[j] === '"') return j;
  }
  return text.length - 1;
}
