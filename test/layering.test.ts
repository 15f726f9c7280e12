/**
 * The layers are folders, and imports only go down (ARCHITECTURE: sys ← kvm ← memory ← arch, boot, devices ←
 * vmm ← lib (the public API, src/index.ts) ← cli, and config ← api ← cli). Checked by reading each source
 * file's imports, since TypeScript 7 has no compiler API.
 * Devices never import KVM; only host backends (an image file, a tap, getrandom) may reach libc.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), "../../src");

/** Layer → the layers it may import (itself always allowed). */
const ALLOWED: Record<string, readonly string[]> = {
  sys: [],
  kvm: ["sys"],
  memory: ["sys"],
  arch: ["kvm", "memory"],
  boot: ["arch", "memory"],
  devices: ["memory"],
  config: [],
  guest: [],
  vmm: ["sys", "kvm", "memory", "arch", "boot", "devices", "config"],
  api: ["config"],
  // The jailer builds the chroot and execs the VMM in it: libc calls Node lacks (mknod, setns, setrlimit, execve).
  jailer: ["sys"],
  // The public API: it wraps vmm and names device and config types, makes the pipes its streams read, and
  // checks user devices' ranges against the machine's layout.
  lib: ["sys", "config", "memory", "arch", "devices", "vmm"],
  // The web console (petasan console): the library's user, like the CLI; its page (web-console/page) is
  // browser code bundled at build time and imports only its npm packages and itself.
  "web-console": ["lib"],
  // The package entry re-exports lib and nothing else.
  "index.ts": ["lib"],
  // The CLI (petasan run and the Firecracker API mode) drives VMs through the public API only, as a user
  // does: never the vmm layer under it.
  cli: ["arch", "boot", "config", "guest", "lib", "api", "jailer", "web-console"],
};

/** Host backends inside devices that need libc (file I/O, tap ioctls, getrandom), and nothing else may. */
const DEVICE_HOST_BACKENDS = new Set(["devices/virtio/block/file-disk.ts", "devices/virtio/net/tap.ts", "devices/virtio/rng/getrandom-source.ts", "devices/virtio/vsock/unix-socket.ts", "devices/virtio/balloon/madvise-discarder.ts"]);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") && !e.name.endsWith(".test.ts") ? [join(dir, e.name)] : [],
  );
}

test("imports only go down the layers", () => {
  const violations: string[] = [];
  for (const file of sources(SRC)) {
    const rel = relative(SRC, file);
    const layer = rel.split("/")[0];
    const allowed = ALLOWED[layer];
    assert.ok(allowed, `${rel}: folder "${layer}" is not a known layer`);
    for (const m of readFileSync(file, "utf8").matchAll(/^(?:import|export)[^"']*from\s+["'](\.[^"']+)["']/gm)) {
      const target = relative(SRC, resolve(dirname(file), m[1])).split("/")[0];
      if (target === layer || allowed.includes(target)) continue;
      if (layer === "devices" && target === "sys" && DEVICE_HOST_BACKENDS.has(rel)) continue;
      violations.push(`${rel} imports ${m[1]} (${layer} may not import ${target})`);
    }
  }
  assert.deepEqual(violations, []);
});
