// Bundles the console's page at build time (npm run build): main.ts with xterm.js and uPlot, and their CSS,
// into dist/src/web-console/page/{app.js,app.css}, beside index.html, so the page needs nothing from the
// network. Type checking is tsc's (tsconfig.json in this folder); esbuild only strips types and bundles.
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

const here = (name) => fileURLToPath(new URL(name, import.meta.url));
const out = fileURLToPath(new URL("../../../dist/src/web-console/page/", import.meta.url));
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { app: here("main.ts") },
  bundle: true,
  minify: true,
  sourcemap: false,
  format: "iife",
  target: "es2022",
  outdir: out,
  logLevel: "warning",
  legalComments: "eof",
});
copyFileSync(here("index.html"), `${out}index.html`);
