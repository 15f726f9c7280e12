import { runCommand } from "./run-command.js";

/** apt must never stop to ask a question: the build runs unattended. */
const APT_ENV = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };

/** `apt-get update` then `apt-get install -y <packages>`, reporting each step and apt's progress lines. */
export async function aptInstall(packages: readonly string[], onProgress: (line: string) => void): Promise<void> {
  const forward = (line: string): void => {
    if (line.trim() !== "") onProgress(`  apt: ${line}`);
  };
  onProgress("apt-get update");
  await runCommand("apt-get", ["update"], { env: APT_ENV, onStdoutLine: forward });
  onProgress(`apt-get install -y ${packages.join(" ")}`);
  await runCommand("apt-get", ["install", "-y", ...packages], { env: APT_ENV, onStdoutLine: forward });
}

/** Whether dpkg records `pkg` as installed. */
export async function isPackageInstalled(pkg: string): Promise<boolean> {
  let status = "";
  try {
    await runCommand("dpkg-query", ["-W", "-f=${Status}", pkg], { onStdoutLine: (line) => (status += line) });
  } catch {
    return false;
  }
  return status === "install ok installed";
}
