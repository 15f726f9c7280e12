/**
 * How fast petasan's Firecracker-compatible API mode answers and boots, each beside a baseline taken
 * in the same run (interleaved, so load from elsewhere on the machine spreads over all of them).
 *
 *   node dist/bench/api-boot.js [--runs N]
 *
 * 1. API ready: spawn → the first answered `GET /` on the API socket, for `petasan --api-sock` and for
 *    Node's floor, a `node -e` HTTP server on a Unix socket answering one request (same client, same
 *    polling).
 * 2. Boot: with the API ready and the boot source and machine config PUT, the InstanceStart request is
 *    sent; measured from then (just before the client connects, so the connection counts too) to its 204
 *    and to the guest's first byte on petasan's stdout. The guest
 *    (api-boot-guest.S) writes that byte to COM1 with its third instruction. Baseline: the same guest,
 *    same memory, through `petasan run --kernel`, spawn → first byte; beside it the API path's own
 *    spawn → first byte (socket ready, two PUTs, InstanceStart).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { requestOverSocket } from "../src/api/api-client.js";
import { API_BOOT_GUEST_OUTPUT, buildApiBootGuest } from "./api-boot-guest.js";
import { spawnTimed, waitForFirstAnswer, whenFirstStdout, type TimedChild } from "./api-boot-process.js";
import { BenchError } from "./bench-error.js";
import { kvmUnavailableReason } from "./kvm-check.js";
import { formatTable, intOption, median } from "./stats.js";

const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
/** Firecracker's default machine config (1 vCPU, 128 MiB), given to both paths so they build the same VM. */
const VCPUS = 1;
const MEM_MIB = 128;
/** Node's floor: an HTTP server on the Unix socket named by its argument that answers once, then closes. */
const NODE_FLOOR_SERVER =
  "const server = require('node:http').createServer((req, res) => { res.end('{}'); server.close(); });" +
  "server.listen(process.argv[1]);";

interface ApiRun {
  /** spawn → first answered GET / */
  ready: number;
  /** InstanceStart sent → its response */
  startAnswered: number;
  /** InstanceStart sent → the guest's first byte on stdout */
  startToFirstByte: number;
  /** spawn → the guest's first byte on stdout */
  spawnToFirstByte: number;
}

async function nodeFloorReady(socketPath: string): Promise<number> {
  const floor = spawnTimed(process.execPath, ["-e", NODE_FLOOR_SERVER, socketPath]);
  const answeredAt = await waitForFirstAnswer(socketPath, floor);
  await floor.finished;
  return answeredAt - floor.spawnedAt;
}

async function apiBoot(socketPath: string, kernel: string): Promise<ApiRun> {
  const petasan = spawnTimed(process.execPath, [CLI, "--api-sock", socketPath]);
  try {
    const readyAt = await waitForFirstAnswer(socketPath, petasan);
    await expectNoContent(socketPath, "PUT", "/boot-source", { kernel_image_path: kernel });
    await expectNoContent(socketPath, "PUT", "/machine-config", { vcpu_count: VCPUS, mem_size_mib: MEM_MIB });
    if (petasan.firstStdoutAt() !== undefined) throw new BenchError(`petasan wrote to stdout before InstanceStart: ${petasan.stdout()}`);
    const firstByte = whenFirstStdout(petasan);
    const sentAt = performance.now();
    await expectNoContent(socketPath, "PUT", "/actions", { action_type: "InstanceStart" });
    const answeredAt = performance.now();
    const firstByteAt = await firstByte;
    await petasan.finished;
    checkGuestOutput(petasan);
    return { ready: readyAt - petasan.spawnedAt, startAnswered: answeredAt - sentAt, startToFirstByte: firstByteAt - sentAt, spawnToFirstByte: firstByteAt - petasan.spawnedAt };
  } finally {
    petasan.child.kill("SIGKILL"); // a no-op once it has ended; ends it if a step above failed
  }
}

async function cliFirstByte(kernel: string): Promise<number> {
  const petasan = spawnTimed(process.execPath, [CLI, "run", "--kernel", kernel, "--memory", `${MEM_MIB}M`, "--cpus", String(VCPUS)]);
  const firstByteAt = await whenFirstStdout(petasan);
  await petasan.finished;
  checkGuestOutput(petasan);
  return firstByteAt - petasan.spawnedAt;
}

async function expectNoContent(socketPath: string, method: string, url: string, body: object): Promise<void> {
  const response = await requestOverSocket(socketPath, method, url, body);
  if (response.status !== 204) throw new BenchError(`${method} ${url} answered ${response.status}: ${response.text}`);
}

/** The first byte must be the guest's marker, not something else petasan printed. */
function checkGuestOutput(petasan: TimedChild): void {
  if (petasan.stdout() !== API_BOOT_GUEST_OUTPUT.complete) {
    throw new BenchError(`expected the guest's output ${JSON.stringify(API_BOOT_GUEST_OUTPUT.complete)} on stdout, got ${JSON.stringify(petasan.stdout())}`);
  }
}

/** One table row: the label, median and fastest run in ms, and the median's ratio to `baseline`'s. */
function row(label: string, values: readonly number[], baseline: readonly number[]): string[] {
  return [label, median(values).toFixed(1), Math.min(...values).toFixed(1), (median(values) / median(baseline)).toFixed(2)];
}

function report(runs: number, floor: number[], api: ApiRun[], cli: number[]): string {
  const of = (pick: (run: ApiRun) => number) => api.map(pick);
  const readyRows = [
    ["API ready: spawn -> first GET / answered", "median ms", "min ms", "x Node floor"],
    row("petasan --api-sock", of((r) => r.ready), floor),
    row("node -e HTTP server on a Unix socket (Node's floor)", floor, floor),
  ];
  const bootRows = [
    [`Boot (1 vCPU, ${MEM_MIB} MiB, guest writes its first byte at once)`, "median ms", "min ms", "x CLI spawn->byte"],
    row("API: InstanceStart sent -> 204 received", of((r) => r.startAnswered), cli),
    row("API: InstanceStart sent -> guest's first byte on stdout", of((r) => r.startToFirstByte), cli),
    row("API: spawn -> first byte (ready, 2 PUTs, InstanceStart)", of((r) => r.spawnToFirstByte), cli),
    row("petasan run --kernel: spawn -> first byte (baseline)", cli, cli),
  ];
  return `api-boot, ${runs} runs (ratios are of the medians)\n\n${formatTable(readyRows)}\n\n${formatTable(bootRows)}`;
}

async function main(argv: string[]): Promise<void> {
  const unavailable = kvmUnavailableReason();
  if (unavailable) {
    console.log(`api-boot: skipped, ${unavailable}`);
    return;
  }
  const runs = intOption(argv, "runs", 5);
  const workDir = await mkdtemp(path.join(tmpdir(), "petasan-api-boot-"));
  try {
    const kernel = await buildApiBootGuest(workDir);
    const floor: number[] = [];
    const api: ApiRun[] = [];
    const cli: number[] = [];
    for (let run = 0; run < runs; run++) {
      floor.push(await nodeFloorReady(path.join(workDir, `floor-${run}.sock`)));
      api.push(await apiBoot(path.join(workDir, `api-${run}.sock`), kernel));
      cli.push(await cliFirstByte(kernel));
    }
    console.log(report(runs, floor, api, cli));
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (e) => {
    // A BenchError names what went wrong; anything else is a bug here, whose stack matters.
    process.stderr.write(`api-boot: ${e instanceof BenchError ? e.message : ((e as Error).stack ?? e)}\n`);
    process.exit(1);
  },
);
