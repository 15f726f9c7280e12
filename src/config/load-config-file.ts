/** --config-file: read a JSON VmConfig (Firecracker's format) and check it like the API would. */
import { open } from "node:fs/promises";
import { JsonSyntaxError, parseJsonText } from "./json-text.js";
import { ConfigError } from "./schema.js";
import type { VmConfig } from "./vm-config.js";
import { parseVmConfig } from "./vm-resources.js";

/** A config file that cannot be read or is not a valid VmConfig; the cause has the detail. */
export class ConfigFileError extends Error {
  override readonly name = "ConfigFileError";
  constructor(readonly path: string, problem: string, options?: ErrorOptions) {
    super(`config file ${path}: ${problem}`, options);
  }
}

/** Far above any real config (a few KiB); stops a mistaken path such as /dev/zero from eating memory. */
export const MAX_CONFIG_FILE_BYTES = 1 << 20;

export async function loadConfigFile(path: string): Promise<VmConfig> {
  const text = await readLimited(path);
  try {
    return parseVmConfig(parseJsonText(text));
  } catch (error) {
    if (error instanceof JsonSyntaxError) throw new ConfigFileError(path, `invalid JSON: ${error.message}`, { cause: error });
    if (error instanceof ConfigError) throw new ConfigFileError(path, error.message, { cause: error });
    throw error;
  }
}

/** Reads up to MAX_CONFIG_FILE_BYTES as UTF-8 (works for pipes too, whose size is unknown up front). */
async function readLimited(path: string): Promise<string> {
  const bytes = await readBytes(path);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (error) {
    throw new ConfigFileError(path, "is not valid UTF-8 text", { cause: error });
  }
}

async function readBytes(path: string): Promise<Uint8Array> {
  let file;
  try {
    file = await open(path, "r");
  } catch (error) {
    throw new ConfigFileError(path, `cannot open: ${(error as Error).message}`, { cause: error });
  }
  try {
    const buffer = Buffer.alloc(MAX_CONFIG_FILE_BYTES + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await file.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > MAX_CONFIG_FILE_BYTES) throw new ConfigFileError(path, `larger than ${MAX_CONFIG_FILE_BYTES} bytes`);
    }
    return buffer.subarray(0, length);
  } catch (error) {
    if (error instanceof ConfigFileError) throw error;
    throw new ConfigFileError(path, `cannot read: ${(error as Error).message}`, { cause: error });
  } finally {
    await file.close();
  }
}
