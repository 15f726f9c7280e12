import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { GuestBuildError } from "./build-error.js";
import { isDirectory } from "./build-cache.js";
import type { GuestSources } from "./guest-sources.js";

/** Names inside a prebuilt-guest directory (the layout of the project's shared/guest). */
const PREBUILT_VMLINUX = "vmlinux";
const PREBUILT_SUMS = "SHA256SUMS";
const PREBUILT_CONFIG = "linux-6.1-kvm-here.config";
const PREBUILT_PATCH = "linux-6.1-kvm-here.patch";

/** Environment variable naming a prebuilt-guest directory that must be used. */
export const PREBUILT_DIR_ENV = "PETASAN_PREBUILT_GUEST_DIR";

export type PrebuiltCheck = { usable: true; vmlinux: string } | { usable: false; reason: string };

/**
 * A prebuilt vmlinux stands in for our own build only if it provably is one: its sha256 matches the directory's
 * SHA256SUMS, and it was built from a config and patch byte-identical to ours.
 */
export async function checkPrebuiltDir(dir: string, sources: GuestSources): Promise<PrebuiltCheck> {
  const vmlinux = join(dir, PREBUILT_VMLINUX);
  const sums = await readOptional(join(dir, PREBUILT_SUMS));
  if (sums === undefined) return { usable: false, reason: `${dir} has no readable ${PREBUILT_SUMS}` };
  const expected = parseSha256Sums(sums.toString("utf8")).get(PREBUILT_VMLINUX);
  if (expected === undefined) return { usable: false, reason: `${PREBUILT_SUMS} in ${dir} lists no ${PREBUILT_VMLINUX}` };
  const actual = await sha256OfFile(vmlinux);
  if (actual === undefined) return { usable: false, reason: `${vmlinux} is unreadable` };
  if (actual !== expected) return { usable: false, reason: `${vmlinux} has sha256 ${actual}, ${PREBUILT_SUMS} says ${expected}` };
  for (const [file, ours] of [[PREBUILT_CONFIG, sources.config], [PREBUILT_PATCH, sources.patch]] as const) {
    const theirs = await readOptional(join(dir, file));
    if (theirs === undefined || !theirs.equals(ours)) {
      return { usable: false, reason: `${join(dir, file)} ${theirs === undefined ? "is missing" : "differs from the repository's"}` };
    }
  }
  return { usable: true, vmlinux };
}

/**
 * The prebuilt vmlinux to use, if any: the directory named by $PETASAN_PREBUILT_GUEST_DIR (an unusable one is an
 * error: the user asked for it), else `<repo>/../shared/guest` when present (an unusable one is reported and
 * skipped).
 */
export async function choosePrebuiltKernel(
  sources: GuestSources,
  env: NodeJS.ProcessEnv,
  root: string,
  onProgress: (line: string) => void,
): Promise<string | undefined> {
  const explicit = env[PREBUILT_DIR_ENV];
  if (explicit) {
    const check = await checkPrebuiltDir(resolve(explicit), sources);
    if (!check.usable) throw new GuestBuildError(`${PREBUILT_DIR_ENV}=${explicit} is not usable: ${check.reason}`);
    return check.vmlinux;
  }
  const shared = resolve(root, "..", "shared", "guest");
  if (!(await isDirectory(shared))) return undefined;
  const check = await checkPrebuiltDir(shared, sources);
  if (check.usable) return check.vmlinux;
  onProgress(`kernel: not using the prebuilt one in ${shared}: ${check.reason}`);
  return undefined;
}

/** `sha256sum` output: "<64 hex> <space or *><name>" per line (GNU coreutils manual, md5sum/sha2 utilities). */
export function parseSha256Sums(text: string): Map<string, string> {
  const sums = new Map<string, string>();
  for (const line of text.split("\n")) {
    const match = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line.trimEnd());
    if (match) sums.set(match[2]!, match[1]!.toLowerCase());
  }
  return sums;
}

function sha256OfFile(path: string): Promise<string | undefined> {
  return new Promise((done) => {
    const hash = createHash("sha256");
    createReadStream(path)
      .on("data", (chunk) => hash.update(chunk))
      .on("end", () => done(hash.digest("hex")))
      .on("error", () => done(undefined));
  });
}

async function readOptional(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch {
    return undefined;
  }
}

