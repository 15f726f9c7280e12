// Bundles the CLI and the two threads a VM runs (npm run build, after tsc) into dist/bundle/: the entries petasan.js,
// vcpu/worker.js and device-thread/worker.js, and chunks of the code they share. On the way to `petasan run`'s first
// KVM_RUN, Node's ESM loader resolves, reads, compiles and links ~260 modules across the three threads; from the
// bundle it is 17 files, ~120 ms less CPU here (bench/README.md, startup). bin/petasan.js runs the bundle unless it
// is missing or older than dist/src; the library (dist/src/index.js) and the tests use dist/src.
//
// The input is tsc's output (dist/src), so the bundle runs the code the tests ran. Packages (koffi, ws) stay
// imports, found in node_modules as before. esbuild keeps `import.meta.url` as the URL of the file the code ends
// up in, so each module's `import.meta.url` is replaced with its own file's URL under dist/src (the URLs built
// from it, the package root and the web console's page, stay right) — except in warm-workers.js, whose thread
// entries are meant to be the bundled ones: they are placed in the bundle as dist/src places them, relative to
// the bundle's root file, where warm-workers.js's code lands (checked below).
import { build } from "esbuild";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../", import.meta.url));
const src = path.join(root, "dist/src");
const WARM_WORKERS = path.join(src, "vmm/warm-workers.js");

/**
 * The threads' entries, read from warm-workers.js (`new URL("./vcpu/worker.js", import.meta.url)`, ...), placed in
 * the bundle where warm-workers.js names them relative to itself: a thread added there is bundled too.
 */
const THREADS = Object.fromEntries(
  [...(await readFile(WARM_WORKERS, "utf8")).matchAll(/new URL\("\.\/([^"]+)\.js", import\.meta\.url\)/g)].map((m) => [m[1], path.join(src, "vmm", `${m[1]}.js`)]),
);
if (Object.keys(THREADS).length === 0) throw new Error(`bundle: no thread entries (new URL("./….js", import.meta.url)) found in ${WARM_WORKERS}`);

/** Rewrites `import.meta.url` to the module's own dist/src URL; the bundle's files all sit in `out`'s root. */
function ownImportMetaUrl(out) {
  return {
    name: "own-import-meta-url",
    setup(b) {
      b.onLoad({ filter: /\.js$/ }, async (args) => {
        const contents = await readFile(args.path, "utf8");
        if (args.path === WARM_WORKERS || !contents.includes("import.meta.url")) return { contents, loader: "js" };
        const fromBundle = path.relative(out, args.path).split(path.sep).join("/");
        return { contents: contents.replaceAll("import.meta.url", `new URL(${JSON.stringify(fromBundle)}, import.meta.url).href`), loader: "js" };
      });
    },
  };
}

/**
 * Bundles `entries` (name in `out`, without .js → compiled module), in `out`'s root, and the two threads into `out`
 * (a folder relative to the repository's root).
 */
export async function bundle(outFolder, entries) {
  const out = path.join(root, outFolder);
  const result = await build({
    entryPoints: { ...entries, ...THREADS },
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    packages: "external",
    outdir: out,
    chunkNames: "chunk-[hash]",
    absWorkingDir: root,
    metafile: true,
    logLevel: "warning",
    plugins: [ownImportMetaUrl(out)],
  });
  // Every module whose import.meta.url was rewritten, and warm-workers.js, must have landed in a file in out's
  // root (the URLs are relative to it); a module used by one thread only lands in that thread's entry, a subfolder.
  for (const [file, output] of Object.entries(result.metafile.outputs)) {
    if (!path.relative(out, path.resolve(root, file)).includes("/")) continue;
    for (const input of Object.keys(output.inputs)) {
      const text = await readFile(path.resolve(root, input), "utf8");
      if (text.includes("import.meta.url")) throw new Error(`bundle: ${input} uses import.meta.url but is bundled into ${file}, not the bundle's root`);
    }
  }
}

// `node scripts/bundle.mjs`: the CLI's bundle. `node scripts/bundle.mjs OUT NAME=MODULE...` (paths relative to the
// repository's root): another, e.g. bench/startup.ts's probe with the threads.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [outFolder = "dist/bundle", ...named] = process.argv.slice(2);
  const entries = named.length ? Object.fromEntries(named.map((e) => e.split("="))) : { petasan: "dist/src/cli/main.js" };
  await bundle(outFolder, entries);
}
