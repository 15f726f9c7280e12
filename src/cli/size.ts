/** Sizes as users type them: "256M", "1G", "1536" (MiB when no suffix), "2048K". */
export class SizeError extends Error {
  override readonly name = "SizeError";
}

const UNITS: Record<string, number> = { K: 1 / 1024, M: 1, G: 1024 };

/** Parses a size into MiB; must be a whole number of MiB. */
export function parseSizeMiB(text: string, what: string): number {
  const m = /^(\d+)\s*([KMG])?(?:i?B)?$/i.exec(text.trim());
  if (!m) throw new SizeError(`${what}: "${text}" is not a size (examples: 256M, 1G, 1536)`);
  const mib = Number(m[1]) * UNITS[(m[2] ?? "M").toUpperCase()];
  if (!Number.isSafeInteger(mib)) throw new SizeError(`${what}: "${text}" is not a whole number of MiB`);
  return mib;
}
