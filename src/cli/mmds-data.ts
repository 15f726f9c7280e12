/** --mmds-data FILE, for petasan run and petasan restore: the MMDS data store's contents from a JSON file. */
import { readFile } from "node:fs/promises";
import { MmdsStore, parseJsonText } from "../config/index.js";

/** The file's JSON, through the data store's checks (Firecracker's default size limit). */
export async function readMmdsData(path: string): Promise<unknown> {
  const text = await readFile(path, "utf8").catch((e: Error) => Promise.reject(new Error(`--mmds-data: cannot read ${path}: ${e.message}`)));
  try {
    const data = parseJsonText(text);
    new MmdsStore().put(data);
    return data;
  } catch (e) {
    throw new Error(`--mmds-data ${path}: ${(e as Error).message}`);
  }
}
