import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { GuestBuildError } from "./build-error.js";

/** File names inside the repository's guest/ folder. */
export const CONFIG_FILE = "linux-6.1-petasan.config";
export const PATCH_FILE = "linux-6.1-petasan.patch";
export const INIT_SOURCE_FILE = join("init", "init32.c");

/**
 * gcc flags for the libc-free 32-bit /init: no PIC and no x87/SSE/AVX registers (ring-3 SSE raised #UD on this
 * host, see KVM-HERE notes), entry point _start since there is no crt0.
 */
export const INIT_CFLAGS = [
  "-m32", "-static", "-nostdlib", "-ffreestanding", "-fno-pic", "-no-pie", "-mgeneral-regs-only", "-O2", "-Wl,-e,_start",
] as const;

/** Everything the default guest is built from, read once so the cache key matches exactly what gets built. */
export interface GuestSources {
  config: Buffer;
  patch: Buffer;
  initSource: Buffer;
}

/** The repository root: this file is compiled to <root>/dist/src/guest/. */
export function repoRoot(): string {
  return fileURLToPath(new URL("../../../", import.meta.url));
}

/** The repository's guest/ folder. */
export function guestDir(root = repoRoot()): string {
  return join(root, "guest");
}

export async function loadGuestSources(dir = guestDir()): Promise<GuestSources> {
  const read = async (name: string): Promise<Buffer> => {
    try {
      return await readFile(join(dir, name));
    } catch (err) {
      throw new GuestBuildError(`default guest source ${join(dir, name)} is unreadable: ${(err as Error).message}`);
    }
  };
  return { config: await read(CONFIG_FILE), patch: await read(PATCH_FILE), initSource: await read(INIT_SOURCE_FILE) };
}

/** Where built guests are kept: $XDG_CACHE_HOME/petasan, else ~/.cache/petasan (XDG Base Directory spec). */
export function defaultCacheDir(env: NodeJS.ProcessEnv, home: string): string {
  const xdg = env.XDG_CACHE_HOME;
  // The XDG spec says relative paths in these variables are invalid and must be ignored.
  return xdg && xdg.startsWith("/") ? join(xdg, "petasan") : join(home, ".cache", "petasan");
}

/**
 * Cache directory names. The kernel and the initramfs are keyed separately so that editing the init does not
 * cost a kernel rebuild. Each key hashes a recipe tag (bump it when the build steps change) and the inputs,
 * length-prefixed so that moving bytes from one input to the next changes the key.
 */
export function kernelCacheName(sources: GuestSources): string {
  return `kernel-${digest("petasan-kernel-v1", sources.config, sources.patch)}`;
}

export function initramfsCacheName(sources: GuestSources): string {
  return `initramfs-${digest("petasan-initramfs-v1", INIT_CFLAGS.join(" "), sources.initSource)}`;
}

/** 16 hex digits (64 bits) of SHA-256: ample to tell a handful of cached builds apart. */
const KEY_HEX_DIGITS = 16;

function digest(...parts: (string | Buffer)[]): string {
  const hash = createHash("sha256");
  for (const part of parts) {
    const bytes = typeof part === "string" ? Buffer.from(part, "utf8") : part;
    hash.update(`${bytes.length}:`);
    hash.update(bytes);
  }
  return hash.digest("hex").slice(0, KEY_HEX_DIGITS);
}
