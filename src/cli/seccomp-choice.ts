/**
 * --no-seccomp / --seccomp-filter FILE, as Firecracker's main.rs: seccomp is on by default with petasan's own
 * lists; --no-seccomp turns it off; --seccomp-filter replaces the lists (petasan's JSON format, README). The two
 * flags exclude each other.
 */
import { compileSeccompPolicy, loadSeccompFilterFile, type SeccompFilters } from "../lib/seccomp.js";

export type SeccompChoice = { kind: "default" } | { kind: "off" } | { kind: "file"; path: string };

export const SECCOMP_FLAGS_EXCLUSIVE = "Argument 'no-seccomp' cannot be used together with argument 'seccomp-filter'.";

export function seccompChoice(noSeccomp: boolean | undefined, filterFile: string | undefined): SeccompChoice {
  if (noSeccomp) return { kind: "off" };
  return filterFile !== undefined ? { kind: "file", path: filterFile } : { kind: "default" };
}

/** The choice's filters, compiled; a bad file throws one line naming it (petasan ends at start, exit code 1). */
export async function seccompFilters(choice: SeccompChoice): Promise<SeccompFilters | undefined> {
  switch (choice.kind) {
    case "off":
      return undefined;
    case "default":
      return compileSeccompPolicy();
    case "file":
      try {
        return compileSeccompPolicy(await loadSeccompFilterFile(choice.path));
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        throw new Error(`--seccomp-filter: ${code ? `${choice.path}: ${(error as Error).message}` : (error as Error).message}`, { cause: error });
      }
  }
}
