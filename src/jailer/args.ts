/**
 * `petasan jailer` flags, as Firecracker's jailer (docs/jailer.md, src/jailer/src/main.rs and env.rs): --id,
 * --uid, --gid required; --exec-file, --chroot-base-dir (default /srv/jailer), --netns, --cgroup FILE=VALUE...,
 * --cgroup-version, --parent-cgroup, --resource-limit fsize=N|no-file=N..., --daemonize, --new-pid-ns; after
 * `--`, the VMM's own arguments.
 */
import { parseArgs } from "node:util";
import { basename } from "node:path";

export const DEFAULT_CHROOT_BASE = "/srv/jailer";
/** Firecracker's jailer bounds no-file to 2048 when no --resource-limit is given. */
export const DEFAULT_NO_FILE = 2048;

export interface JailerArgs {
  id: string;
  execFile: string;
  /** The exec file's name without ".js": the chroot's and the parent cgroup's folder. */
  execName: string;
  uid: number;
  gid: number;
  chrootBaseDir: string;
  netns?: string;
  cgroups: { file: string; value: string }[];
  parentCgroup: string;
  resourceLimits: { fsize?: number; noFile: number };
  daemonize: boolean;
  newPidNs: boolean;
  vmmArgs: string[];
}

export class JailerUsageError extends Error {
  override readonly name = "JailerUsageError";
}

export const JAILER_USAGE = `usage: petasan jailer --id ID --uid UID --gid GID [--exec-file FILE] [--chroot-base-dir DIR]
                      [--netns PATH] [--cgroup-version 2] [--cgroup FILE=VALUE]... [--parent-cgroup PATH]
                      [--resource-limit fsize=BYTES|no-file=N]... [--daemonize] [--new-pid-ns] [-- VMM ARGS...]
Runs petasan (the Firecracker-compatible VMM) jailed, as Firecracker's jailer runs firecracker: in the chroot
<chroot-base-dir>/<exec name>/<id>/root (default base ${DEFAULT_CHROOT_BASE}), a new mount namespace (and pid
namespace with --new-pid-ns), the given network namespace and cgroup (v2 only), as UID:GID, with rlimits.
The API socket and every path the VMM is given are inside the chroot.`;

const OPTIONS = {
  id: { type: "string" },
  "exec-file": { type: "string" },
  uid: { type: "string" },
  gid: { type: "string" },
  "chroot-base-dir": { type: "string" },
  netns: { type: "string" },
  cgroup: { type: "string", multiple: true },
  "cgroup-version": { type: "string" },
  "parent-cgroup": { type: "string" },
  "resource-limit": { type: "string", multiple: true },
  daemonize: { type: "boolean" },
  "new-pid-ns": { type: "boolean" },
} as const;

export function parseJailerArgs(argv: string[], defaultExecFile: string): JailerArgs {
  const dashes = argv.indexOf("--");
  const own = dashes < 0 ? argv : argv.slice(0, dashes);
  const vmmArgs = dashes < 0 ? [] : argv.slice(dashes + 1);
  let values;
  try {
    ({ values } = parseArgs({ args: own, options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (error) {
    throw new JailerUsageError((error as Error).message);
  }
  const need = (name: "id" | "uid" | "gid") => {
    const v = values[name];
    if (v === undefined) throw new JailerUsageError(`--${name} is required`);
    return v;
  };
  const id = need("id");
  // Firecracker's validators::validate_instance_id: 1 to 64 letters, digits or '-'.
  if (!/^[A-Za-z0-9-]{1,64}$/.test(id)) throw new JailerUsageError(`--id: "${id}" must be 1 to 64 letters, digits or '-'`);
  const uid = idNumber("uid", need("uid"));
  const gid = idNumber("gid", need("gid"));
  const version = values["cgroup-version"] ?? "2";
  if (version === "1") throw new JailerUsageError("--cgroup-version 1: petasan's jailer supports cgroup v2 only");
  if (version !== "2") throw new JailerUsageError(`--cgroup-version: "${version}" is not 1 or 2`);
  const execFile = values["exec-file"] ?? defaultExecFile;
  const execName = basename(execFile).replace(/\.js$/, "");
  const cgroups = (values.cgroup ?? []).map((c) => {
    const m = /^([a-z_]+\.[a-z_.]+)=(.+)$/.exec(c);
    if (!m) throw new JailerUsageError(`--cgroup: "${c}" is not <cgroup file>=<value> (e.g. cpu.max=50000)`);
    return { file: m[1], value: m[2] };
  });
  const parentCgroup = values["parent-cgroup"] ?? execName;
  if (parentCgroup.split("/").some((part) => part === ".." || part === "") || parentCgroup.startsWith("/")) {
    throw new JailerUsageError(`--parent-cgroup: "${parentCgroup}" must be a relative path without ".."`);
  }
  const resourceLimits: JailerArgs["resourceLimits"] = { noFile: DEFAULT_NO_FILE };
  for (const r of values["resource-limit"] ?? []) {
    const m = /^(fsize|no-file)=(\d{1,19})$/.exec(r);
    if (!m) throw new JailerUsageError(`--resource-limit: "${r}" is not fsize=<bytes> or no-file=<count>`);
    if (m[1] === "fsize") resourceLimits.fsize = Number(m[2]);
    else resourceLimits.noFile = Number(m[2]);
  }
  return {
    id, execFile, execName, uid, gid,
    chrootBaseDir: values["chroot-base-dir"] ?? DEFAULT_CHROOT_BASE,
    netns: values.netns,
    cgroups, parentCgroup, resourceLimits,
    daemonize: values.daemonize ?? false,
    newPidNs: values["new-pid-ns"] ?? false,
    vmmArgs,
  };
}

function idNumber(flag: string, text: string): number {
  if (!/^\d{1,10}$/.test(text) || Number(text) > 0xfffffffe) throw new JailerUsageError(`--${flag}: "${text}" is not a user or group id`);
  return Number(text);
}
