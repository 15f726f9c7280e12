export function duration(ms: number | undefined): string {
  if (ms === undefined) return "–";
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n: number) => String(n).padStart(2, "0");
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

export function mib(n: number): string {
  return n >= 1024 && n % 1024 === 0 ? `${n / 1024} GiB` : `${n} MiB`;
}

/** 1234567 → "1.2 M" */
export function count(n: number | undefined): string {
  if (n === undefined) return "–";
  if (n < 10) return String(Math.round(n * 10) / 10);
  if (n < 1000) return String(Math.round(n));
  const units = ["k", "M", "G", "T"];
  let i = -1;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

export function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n >= 10 || n === Math.round(n) ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}
