import { parseArgs } from "node:util";
import { buildDefaultGuest } from "./default-guest.js";

const USAGE = `usage: petasan guest build [--from-source] [--cache-dir DIR]

Prepares the default guest (kernel + initramfs) and prints its paths.
  --from-source    build the kernel here even if a matching prebuilt one exists
  --cache-dir DIR  keep builds in DIR (default: $XDG_CACHE_HOME/petasan or ~/.cache/petasan)
`;

/** Exit statuses: success, a failed build, a bad command line (the usual 2 of getopt-style tools). */
const EXIT_OK = 0;
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

/** `petasan guest build`: progress on stderr, `kernel=`, `initrd=`, `cmdline=` lines on stdout. */
export async function runGuestBuild(argv: string[]): Promise<number> {
  let values: { "from-source"?: boolean; "cache-dir"?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        "from-source": { type: "boolean" },
        "cache-dir": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    process.stderr.write(`petasan guest build: ${(err as Error).message}\n${USAGE}`);
    return EXIT_USAGE;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return EXIT_OK;
  }
  try {
    const guest = await buildDefaultGuest({
      fromSource: values["from-source"] ?? false,
      cacheDir: values["cache-dir"],
      onProgress: (line) => process.stderr.write(`${line}\n`),
    });
    process.stdout.write(`kernel=${guest.kernel}\ninitrd=${guest.initrd}\ncmdline=${guest.cmdline}\n`);
    return EXIT_OK;
  } catch (err) {
    // GuestBuildError and file-system errors (unwritable cache, ...) alike carry a readable message.
    if (!(err instanceof Error)) throw err;
    process.stderr.write(`petasan guest build: ${err.message}\n`);
    return EXIT_FAILED;
  }
}
