/**
 * The page's files: built by esbuild at build time (page/build.mjs) into dist beside this module, and read
 * once at start, so the page works offline and the server serves a fixed list of files (nothing from a path
 * the request names).
 */
import { readFileSync } from "node:fs";

export interface Asset {
  type: string;
  body: Buffer;
}

const FILES: Record<string, string> = {
  "index.html": "text/html; charset=utf-8",
  "app.js": "text/javascript; charset=utf-8",
  "app.css": "text/css; charset=utf-8",
};

/** URL path → file; "/" is index.html. Throws one line when the page was not built. */
export function loadPageAssets(dir = new URL("./page/", import.meta.url)): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const [name, type] of Object.entries(FILES)) {
    try {
      assets.set(`/${name}`, { type, body: readFileSync(new URL(name, dir)) });
    } catch (error) {
      throw new Error(`the console's page is not built (${(error as NodeJS.ErrnoException).code} for ${name}): run npm run build`);
    }
  }
  assets.set("/", assets.get("/index.html")!);
  return assets;
}
