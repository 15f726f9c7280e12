/**
 * Run by `npm test` before the tests: installs, through apt-get, the Debian packages of every host program the tests
 * run (test/setup/host-tools.ts) that this machine lacks. Does nothing when all are there; needs root otherwise.
 */
import { aptInstall } from "../../src/guest/apt.js";
import { isPresent, TEST_TOOLS } from "./host-tools.js";

const missing = TEST_TOOLS.filter((t) => !isPresent(t));
if (missing.length > 0) {
  const pkgs = [...new Set(missing.map((t) => t.pkg))];
  const say = (line: string) => process.stderr.write(`test setup: ${line}\n`);
  say(`missing ${missing.map((t) => `${t.tool ?? t.pkg} (${t.usedBy})`).join("; ")}`);
  if (process.getuid?.() !== 0) {
    say(`run as root, or install them first: apt-get install ${pkgs.join(" ")}`);
    process.exit(1);
  }
  try {
    await aptInstall(pkgs, say);
  } catch (e) {
    say(`apt-get failed: ${(e as Error).message}`);
    process.exit(1);
  }
  const still = TEST_TOOLS.filter((t) => !isPresent(t));
  if (still.length > 0) {
    say(`still missing after apt-get: ${still.map((t) => t.tool ?? t.pkg).join(", ")}`);
    process.exit(1);
  }
}
