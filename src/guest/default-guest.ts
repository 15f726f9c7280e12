import { homedir } from "node:os";
import { join } from "node:path";
import { cachedDirectory } from "./build-cache.js";
import { defaultCacheDir, initramfsCacheName, kernelCacheName, loadGuestSources, repoRoot, type GuestSources } from "./guest-sources.js";
import { buildInitramfs, INIT_FILE, INITRAMFS_FILE } from "./initramfs.js";
import { buildKernel, VMLINUX_FILE } from "./kernel-build.js";
import { choosePrebuiltKernel } from "./prebuilt.js";

/**
 * Kernel arguments every boot of the default guest needs: the console on the first 16550 (ttyS0); reboot through
 * the i8042 keyboard-controller reset line (reboot=k), which ends the VMM; and reboot at once on a panic
 * (panic=-1) so a failed boot ends too (Documentation/admin-guide/kernel-parameters.txt).
 */
export const BASE_CMDLINE = "console=ttyS0 reboot=k panic=-1";

export interface DefaultGuest {
  /** Uncompressed ELF vmlinux carrying the PVH entry note. */
  kernel: string;
  /** Uncompressed cpio initramfs whose /init prints "BOOT-OK uptime=<s>" and reboots. */
  initrd: string;
  /** The 32-bit init binary inside the initramfs, for building other root file systems around it. */
  init: string;
  /** Base kernel arguments; host-specific ones are appended by the caller. */
  cmdline: string;
}

export interface GuestBuildOptions {
  onProgress?: (line: string) => void;
  /** Defaults to $XDG_CACHE_HOME/petasan, else ~/.cache/petasan. */
  cacheDir?: string;
}

/** The default guest for `petasan run` without --kernel: a prebuilt kernel when one provably matches, else built. */
export function ensureDefaultGuest(opts: GuestBuildOptions = {}): Promise<DefaultGuest> {
  return buildDefaultGuest(opts);
}

/**
 * Prepares the default guest, reusing cached builds. `fromSource` ignores prebuilt kernels, so the kernel comes
 * from the cache or is compiled here (minutes).
 */
export async function buildDefaultGuest(opts: GuestBuildOptions & { fromSource?: boolean } = {}): Promise<DefaultGuest> {
  const onProgress = opts.onProgress ?? (() => {});
  const cacheDir = opts.cacheDir ?? defaultCacheDir(process.env, homedir());
  const sources = await loadGuestSources();

  const initramfs = await cachedDirectory(cacheDir, initramfsCacheName(sources),
    (out, scratch) => buildInitramfs(sources, out, scratch, onProgress));
  const initrd = join(initramfs.dir, INITRAMFS_FILE);
  const init = join(initramfs.dir, INIT_FILE);
  onProgress(`initramfs: ${initramfs.built ? "built" : "cached"} ${initrd}`);

  const kernel = await defaultKernel(sources, cacheDir, opts.fromSource ?? false, onProgress);
  return { kernel, initrd, init, cmdline: BASE_CMDLINE };
}

async function defaultKernel(sources: GuestSources, cacheDir: string, fromSource: boolean,
  onProgress: (line: string) => void): Promise<string> {
  if (!fromSource) {
    const prebuilt = await choosePrebuiltKernel(sources, process.env, repoRoot(), onProgress);
    if (prebuilt !== undefined) {
      onProgress(`kernel: prebuilt ${prebuilt} (checksum verified, same config and patch as this repository)`);
      return prebuilt;
    }
  }
  const name = kernelCacheName(sources);
  const cached = await cachedDirectory(cacheDir, name, (out, scratch) => {
    onProgress(`kernel: no cached build ${name}: building from Debian's linux-source (takes minutes)`);
    return buildKernel(sources, out, scratch, onProgress);
  });
  const vmlinux = join(cached.dir, VMLINUX_FILE);
  onProgress(`kernel: ${cached.built ? "built" : "cached"} ${vmlinux}`);
  return vmlinux;
}
