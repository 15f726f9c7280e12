/**
 * The host programs the tests run, and the Debian package of each. `npm test` installs the missing ones before any
 * test runs (test/setup/install-test-tools.ts, as root through apt-get, idempotent); a test that execs one asks
 * `requireTool` first, so a machine without it fails with a line that says what to install, never silently.
 * (The guest kernel's build tools are installed by the guest build itself: src/guest/kernel-build.ts.)
 */
import { spawnSync } from "node:child_process";

export interface TestTool {
  /** A command on PATH, or undefined for a package checked by name (a library, not a command). */
  tool?: string;
  pkg: string;
  /** Which tests need it. */
  usedBy: string;
}

export const TEST_TOOLS: readonly TestTool[] = [
  { tool: "gcc", pkg: "gcc", usedBy: "the test guests (test/guests) and bench baselines" },
  { tool: "ld", pkg: "binutils", usedBy: "the test guests' linker scripts" },
  { pkg: "gcc-multilib", usedBy: "the default guest's 32-bit /init (gcc -m32 -static)" },
  { tool: "ip", pkg: "iproute2", usedBy: "the network namespace and tap of the Linux virtio-net test" },
  { tool: "ping", pkg: "iputils-ping", usedBy: "the Linux virtio-net test (the host pings the guest)" },
  { tool: "mke2fs", pkg: "e2fsprogs", usedBy: "the ext4 root file system of the Linux guest tests" },
  { tool: "debugfs", pkg: "e2fsprogs", usedBy: "the Linux snapshot test (reads the guest's file from its ext4 image)" },
  { tool: "script", pkg: "bsdutils", usedBy: "the console test (a pseudo-terminal for petasan)" },
  { tool: "chromium", pkg: "chromium", usedBy: "the web console's browser tests (puppeteer-core drives it headless)" },
];

/** Whether `command` is on PATH (what the shell's `command -v` finds). */
export function onPath(command: string): boolean {
  return spawnSync("sh", ["-c", 'command -v "$1" >/dev/null', "sh", command]).status === 0;
}

/** Whether dpkg records `pkg` as installed. */
export function packageInstalled(pkg: string): boolean {
  const r = spawnSync("dpkg-query", ["-W", "-f=${Status}", pkg], { encoding: "utf8" });
  return r.status === 0 && r.stdout === "install ok installed";
}

export function isPresent(t: TestTool): boolean {
  return t.tool !== undefined ? onPath(t.tool) : packageInstalled(t.pkg);
}

/** `tool`, after checking it is installed; throws a one-line error naming the package otherwise. */
export function requireTool(tool: string): string {
  if (onPath(tool)) return tool;
  const known = TEST_TOOLS.find((t) => t.tool === tool);
  const pkg = known?.pkg ?? tool;
  throw new Error(`${tool} is not installed (Debian package ${pkg}): \`npm test\` installs it when run as root, or run \`apt-get install ${pkg}\``);
}
