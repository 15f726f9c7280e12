/**
 * `petasan run` flags → a VmConfig (the same schema the API and --config-file use) plus console options.
 */
import { parseArgs } from "node:util";
import type { VmConfig } from "../config/vm-config.js";
import { parseVmConfig } from "../config/vm-resources.js";
import { parseSizeMiB } from "./size.js";
import { LOG_LEVELS, type HostPlacement, type LogLevel } from "../lib/index.js";
import { SECCOMP_FLAGS_EXCLUSIVE, seccompChoice, type SeccompChoice } from "./seccomp-choice.js";

export class UsageError extends Error {
  override readonly name = "UsageError";
}

export type SerialTarget = { kind: "stdio" } | { kind: "file"; path: string } | { kind: "none" };

export interface RunArgs {
  /** The config, except that a missing kernel means "the default guest". */
  config: Omit<VmConfig, "boot-source"> & { "boot-source"?: VmConfig["boot-source"] };
  kernel?: string;
  initrd?: string;
  cmdline?: string;
  serial: SerialTarget;
  logLevel: LogLevel;
  /** --mmds-data: a JSON file for the MMDS data store. */
  mmdsDataFile?: string;
  /** Ctrl-A s writes a snapshot here. */
  snapshotDir?: string;
  /** petasan's host placement options (--ksm, --numa-node). */
  host: HostPlacement;
  /** Seccomp as in the Firecracker mode: on by default, --no-seccomp, --seccomp-filter FILE. */
  seccomp: SeccompChoice;
}

export const RUN_USAGE = `usage: petasan run [--kernel FILE] [--initrd FILE] [--cmdline ARGS] [--memory SIZE] [--cpus N]
                   [--cpu-template host|minimal] [--serial stdio|file:PATH|none] [--log-level LEVEL]
                   [--huge-pages None|Transparent|2M] [--ksm] [--numa-node N] [--no-seccomp | --seccomp-filter FILE]
  --kernel FILE        bzImage, ELF vmlinux (PVH entry used when present) or ELF test guest;
                       without it, the default guest (built and cached on first use)
  --initrd FILE        initial ramdisk
  --cmdline ARGS       kernel command line (default: console=ttyS0 reboot=k panic=-1 pci=off
                       i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd)
  --memory SIZE        guest RAM, e.g. 256M or 2G (64M to 16G; default 256M)
  --cpus N             vCPUs (1 to 32; default 1)
  --cpu-template T     host (what KVM supports, default) or minimal (the x86-64 baseline)
  --huge-pages P       2M backs guest RAM with hugetlbfs pages (reserved at start: see
                       /proc/sys/vm/nr_hugepages); None (default) and Transparent advise THP
  --ksm                let KSM merge identical guest pages (MADV_MERGEABLE)
  --numa-node N        bind guest RAM to host NUMA node N and pin the vCPU threads to its CPUs
  --serial TARGET      where the guest's ttyS0 goes: stdio (default), file:PATH, or none
  --log-level LEVEL    Error, Warning (default), Info, Debug or Trace; logs go to stderr
  --drive path=FILE[,ro][,root][,id=NAME]
                       a virtio-blk disk on a raw image (repeatable); root makes it the root device
  --net tap=NAME[,mac=XX:XX:XX:XX:XX:XX][,id=NAME]
                       a virtio-net NIC on tap NAME (created if missing); repeatable
  --rng                a virtio-rng entropy device fed by the host's getrandom
  --vsock cid=N,uds=PATH
                       a virtio-vsock device for guest CID N (3 or more); host programs connect to the unix
                       socket PATH ("CONNECT <port>\\n"), guest connections to port P reach PATH_P
  --mmds-config version=V1|V2[,imds][,ipv4=ADDR][,iface=NAME]...
                       the metadata service (Firecracker's MMDS) on the NICs named (default: all --net)
  --mmds-data FILE     JSON for the MMDS data store (needs --mmds-config)
  --snapshot-dir DIR   Ctrl-A s pauses the VM, writes DIR/vm.snap and DIR/vm.mem and resumes it
                       (petasan restore DIR runs it again)
  --no-seccomp         install no seccomp filters (by default each petasan thread installs its own)
  --seccomp-filter FILE
                       the threads' system call lists from FILE (JSON, see the README)
On a terminal, Ctrl-A x quits and Ctrl-A Ctrl-A sends Ctrl-A to the guest.`;

const MIN_MEMORY_MIB = 64;
const MAX_MEMORY_MIB = 16 * 1024;

export function parseRunArgs(argv: string[]): RunArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        kernel: { type: "string" },
        initrd: { type: "string" },
        cmdline: { type: "string" },
        memory: { type: "string", default: "256M" },
        cpus: { type: "string", default: "1" },
        "cpu-template": { type: "string", default: "host" },
        serial: { type: "string", default: "stdio" },
        "log-level": { type: "string", default: "Warning" },
        drive: { type: "string", multiple: true, default: [] },
        net: { type: "string", multiple: true, default: [] },
        rng: { type: "boolean", default: false },
        vsock: { type: "string" },
        "mmds-config": { type: "string" },
        "mmds-data": { type: "string" },
        "snapshot-dir": { type: "string" },
        "huge-pages": { type: "string", default: "None" },
        ksm: { type: "boolean", default: false },
        "numa-node": { type: "string" },
        "no-seccomp": { type: "boolean" },
        "seccomp-filter": { type: "string" },
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  let memMib: number;
  try {
    memMib = parseSizeMiB(values.memory, "--memory");
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (memMib < MIN_MEMORY_MIB || memMib > MAX_MEMORY_MIB) throw new UsageError(`--memory: ${values.memory} is outside 64M..16G`);
  if (!/^\d+$/.test(values.cpus)) throw new UsageError(`--cpus: "${values.cpus}" is not a whole number`);
  const logLevel = LOG_LEVELS.find((l) => l.toLowerCase() === values["log-level"].toLowerCase());
  if (!logLevel) throw new UsageError(`--log-level: "${values["log-level"]}" is not one of ${LOG_LEVELS.join(", ")}`);
  const numaNode = values["numa-node"];
  if (numaNode !== undefined && !/^\d+$/.test(numaNode)) throw new UsageError(`--numa-node: "${numaNode}" is not a node number`);
  if (values["no-seccomp"] && values["seccomp-filter"] !== undefined) throw new UsageError(SECCOMP_FLAGS_EXCLUSIVE);
  if (values.initrd && !values.kernel) throw new UsageError("--initrd needs --kernel (the default guest brings its own)");
  if (values["mmds-data"] !== undefined && values["mmds-config"] === undefined) throw new UsageError("--mmds-data needs --mmds-config");

  // Validate everything but the kernel through the shared schema, so limits and messages match the API's.
  const raw = {
    "boot-source": { kernel_image_path: values.kernel ?? "(default guest)", ...(values.initrd ? { initrd_path: values.initrd } : {}) },
    "machine-config": { vcpu_count: Number(values.cpus), mem_size_mib: memMib, cpu_template: values["cpu-template"], huge_pages: values["huge-pages"] },
    drives: values.drive.map((d, i) => driveOption(d, i)),
    "network-interfaces": values.net.map((n, i) => netOption(n, i)),
    ...(values.rng ? { entropy: {} } : {}),
    ...(values.vsock !== undefined ? { vsock: vsockOption(values.vsock) } : {}),
  };
  if (values["mmds-config"] !== undefined) {
    Object.assign(raw, { "mmds-config": mmdsOption(values["mmds-config"], raw["network-interfaces"].map((n) => n.iface_id as string)) });
  }
  let config: VmConfig;
  try {
    config = parseVmConfig(raw);
  } catch (e) {
    throw new UsageError(`invalid options: ${(e as Error).message}`);
  }
  const { "boot-source": _unused, ...rest } = config;
  void _unused;
  return {
    config: rest,
    kernel: values.kernel,
    initrd: values.initrd,
    cmdline: values.cmdline,
    serial: parseSerial(values.serial),
    logLevel,
    ...(values["mmds-data"] !== undefined && { mmdsDataFile: values["mmds-data"] }),
    ...(values["snapshot-dir"] ? { snapshotDir: values["snapshot-dir"] } : {}),
    host: { ...(values.ksm && { ksm: true }), ...(numaNode !== undefined && { numaNode: Number(numaNode) }) },
    seccomp: seccompChoice(values["no-seccomp"], values["seccomp-filter"]),
  };
}

/** Parses "k=v,flag,..." into a map; `flags` are the keys allowed without a value. */
function keyValues(text: string, option: string, keys: readonly string[], flags: readonly string[]): Map<string, string | true> {
  const out = new Map<string, string | true>();
  for (const part of text.split(",")) {
    const eq = part.indexOf("=");
    const key = eq < 0 ? part : part.slice(0, eq);
    if (eq < 0 ? !flags.includes(key) : !keys.includes(key)) {
      throw new UsageError(`${option}: unknown part "${part}" (expected ${[...keys.map((k) => `${k}=...`), ...flags].join(", ")})`);
    }
    if (out.has(key)) throw new UsageError(`${option}: "${key}" given twice`);
    out.set(key, eq < 0 ? true : part.slice(eq + 1));
  }
  return out;
}

function driveOption(text: string, index: number): Record<string, unknown> {
  const kv = keyValues(text, "--drive", ["path", "id"], ["ro", "root"]);
  const path = kv.get("path");
  if (typeof path !== "string" || path === "") throw new UsageError(`--drive: "${text}" needs path=FILE`);
  const id = kv.get("id");
  return { drive_id: typeof id === "string" ? id : `drive${index}`, path_on_host: path, is_root_device: kv.has("root"), is_read_only: kv.has("ro") };
}

function netOption(text: string, index: number): Record<string, unknown> {
  const kv = keyValues(text, "--net", ["tap", "mac", "id"], []);
  const tap = kv.get("tap");
  if (typeof tap !== "string" || tap === "") throw new UsageError(`--net: "${text}" needs tap=NAME`);
  const mac = kv.get("mac");
  const id = kv.get("id");
  return { iface_id: typeof id === "string" ? id : `eth${index}`, host_dev_name: tap, ...(typeof mac === "string" ? { guest_mac: mac } : {}) };
}

function vsockOption(text: string): Record<string, unknown> {
  const kv = keyValues(text, "--vsock", ["cid", "uds"], []);
  const cid = kv.get("cid");
  const uds = kv.get("uds");
  if (typeof cid !== "string" || !/^\d+$/.test(cid) || typeof uds !== "string" || uds === "") {
    throw new UsageError(`--vsock: "${text}" needs cid=N (a whole number) and uds=PATH`);
  }
  return { guest_cid: Number(cid), uds_path: uds };
}

/** "version=V2,imds,ipv4=169.254.169.254,iface=eth0": a MmdsConfig; iface may repeat and defaults to every NIC. */
function mmdsOption(text: string, nics: readonly string[]): Record<string, unknown> {
  const ifaces: string[] = [];
  const rest = text.split(",").filter((part) => (part.startsWith("iface=") ? (ifaces.push(part.slice(6)), false) : true)).join(",");
  const kv = rest === "" ? new Map<string, string | true>() : keyValues(rest, "--mmds-config", ["version", "ipv4"], ["imds"]);
  const version = kv.get("version");
  const ipv4 = kv.get("ipv4");
  return {
    ...(typeof version === "string" ? { version: version.toUpperCase() } : {}),
    network_interfaces: ifaces.length > 0 ? ifaces : [...nics],
    ...(typeof ipv4 === "string" ? { ipv4_address: ipv4 } : {}),
    imds_compat: kv.has("imds"),
  };
}

function parseSerial(text: string): SerialTarget {
  if (text === "stdio" || text === "none") return { kind: text };
  if (text.startsWith("file:") && text.length > 5) return { kind: "file", path: text.slice(5) };
  throw new UsageError(`--serial: "${text}" is not stdio, none or file:PATH`);
}
