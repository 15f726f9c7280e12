/** `petasan jailer`: parse, jail, exec. */
import { fileURLToPath } from "node:url";
import { JAILER_USAGE, JailerUsageError, parseJailerArgs } from "./args.js";
import { jail } from "./jailer.js";

export { chrootDir } from "./jailer.js";
export { parseJailerArgs, JAILER_USAGE } from "./args.js";

/** petasan itself: this file is dist/src/jailer/index.js, the command bin/petasan.js. */
export const PETASAN_EXEC_FILE = fileURLToPath(new URL("../../../bin/petasan.js", import.meta.url));

/**
 * Runs the jailer. On success the process has become the VMM and this never returns, except with --new-pid-ns,
 * where the VMM is a child and the jailer ends with 0 once its pid file is written (as Firecracker's).
 */
export async function runJailer(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(`${JAILER_USAGE}\n`);
    return 0;
  }
  try {
    await jail(parseJailerArgs(argv, PETASAN_EXEC_FILE));
    return 0;
  } catch (error) {
    process.stderr.write(`petasan jailer: ${(error as Error).message}\n`);
    if (error instanceof JailerUsageError) process.stderr.write(`${JAILER_USAGE}\n`);
    return 1;
  }
}
