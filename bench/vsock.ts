/**
 * vsock round trips and throughput, host ↔ guest through petasan's virtio-vsock with Firecracker's host side
 * (a host Unix socket, "CONNECT <port>\n"), beside the same client against an echo server in another process
 * over a plain host Unix socket (the floor: what the host's own socket path costs).
 *
 *   node dist/bench/vsock.js [--rounds N] [--mib M]
 *
 * The guest is the default Linux guest with `petasan.vsock-echo` (guest/init/init32.c): it listens on vsock port
 * 5002 and sends back every byte. Latency: N round trips of 64 bytes, one at a time (median and 90th percentile).
 * Throughput: M MiB written in 64 KiB pieces while the echo is read back, bytes per second of the round trip.
 * On a host whose KVM emulates guest ring 0 (as the development machines), the guest kernel's share of a round
 * trip dominates; on hosts with VT-x/AMD-V the device path is a larger part of it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createConnection, type Socket } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { ensureDefaultGuest } from "../src/guest/default-guest.js";
import { detectHostVirtualization, EMULATED_RING0_KERNEL_ARGS } from "../src/arch/x86/host.js";
import { BenchError } from "./bench-error.js";
import { kvmUnavailableReason } from "./kvm-check.js";
import { formatTable, intOption, median } from "./stats.js";
import { connectToGuest } from "../test/integration/vsock-host.js";

const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const ECHO_PORT = 5002;
const MESSAGE_BYTES = 64;
const CHUNK_BYTES = 64 * 1024;
/** A Linux boot takes a minute or two where ring 0 is emulated. */
const BOOT_TIMEOUT_MS = 300_000;
/** The floor: an echo server on the Unix socket named by its argument. */
const ECHO_SERVER = "require('node:net').createServer((s) => s.pipe(s)).listen(process.argv[1], () => console.log('ready'));";

interface Figures {
  latencyMedianUs: number;
  latencyP90Us: number;
  mibPerSecond: number;
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

/** Resolves once `child`'s stdout has shown `text`; rejects if it ends first or takes longer than `timeoutMs`. */
function waitForOutput(child: ChildProcess, text: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new BenchError(`no "${text}" within ${timeoutMs} ms; output so far:\n${seen.slice(-2000)}`)), timeoutMs);
    const onData = (d: Buffer) => {
      seen += d.toString("latin1");
      if (seen.includes(text)) {
        clearTimeout(timer);
        child.stdout!.off("data", onData);
        resolve();
      }
    };
    child.stdout!.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new BenchError(`${child.spawnfile} ended (exit ${code}) before "${text}"; output:\n${seen.slice(-2000)}`));
    });
  });
}

/** Resolves once `count` more bytes have arrived on `socket`. */
function readBytes(socket: Socket, count: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let got = 0;
    const onData = (d: Buffer) => {
      got += d.length;
      if (got >= count) {
        socket.off("data", onData);
        socket.off("close", onClose);
        resolve();
      }
    };
    const onClose = () => reject(new BenchError(`connection closed after ${got} of ${count} bytes`));
    socket.on("data", onData);
    socket.once("close", onClose);
  });
}

async function connect(socketPath: string): Promise<Socket> {
  const socket = createConnection(socketPath);
  await new Promise((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  return socket;
}

async function measure(socket: Socket, rounds: number, mib: number): Promise<Figures> {
  const message = Buffer.alloc(MESSAGE_BYTES, 0x61);
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const started = performance.now();
    const back = readBytes(socket, MESSAGE_BYTES);
    socket.write(message);
    await back;
    times.push((performance.now() - started) * 1000);
  }
  const total = mib * 1024 * 1024;
  const chunk = Buffer.alloc(CHUNK_BYTES, 0x62);
  const started = performance.now();
  const echoed = readBytes(socket, total);
  for (let sent = 0; sent < total; sent += CHUNK_BYTES) {
    if (!socket.write(chunk)) await new Promise((resolve) => socket.once("drain", resolve));
  }
  await echoed;
  const seconds = (performance.now() - started) / 1000;
  return { latencyMedianUs: median(times), latencyP90Us: percentile(times, 0.9), mibPerSecond: mib / seconds };
}

async function floorFigures(workDir: string, rounds: number, mib: number): Promise<Figures> {
  const socketPath = path.join(workDir, "floor.sock");
  const server = spawn(process.execPath, ["-e", ECHO_SERVER, socketPath], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    await waitForOutput(server, "ready", 10_000);
    const socket = await connect(socketPath);
    const figures = await measure(socket, rounds, mib);
    socket.destroy();
    return figures;
  } finally {
    server.kill();
  }
}

async function petasanFigures(workDir: string, rounds: number, mib: number): Promise<Figures> {
  const guest = await ensureDefaultGuest({ onProgress: (line) => process.stderr.write(`vsock: ${line}\n`) });
  const hostArgs = detectHostVirtualization().hardware ? [] : EMULATED_RING0_KERNEL_ARGS;
  const cmdline = [guest.cmdline, ...hostArgs, "petasan.vsock-echo"].join(" ");
  const udsPath = path.join(workDir, "v.sock");
  const vm = spawn(process.execPath, [CLI, "run", "--vsock", `cid=3,uds=${udsPath}`, "--serial", "stdio", "--cmdline", cmdline], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  try {
    await waitForOutput(vm, "VSOCK-ECHO-READY", BOOT_TIMEOUT_MS);
    const { socket } = await connectToGuest(udsPath, ECHO_PORT);
    const figures = await measure(socket, rounds, mib);
    socket.end();
    return figures;
  } finally {
    vm.kill();
  }
}

function report(rounds: number, mib: number, floor: Figures, vsock: Figures): string {
  const row = (name: string, f: Figures) => [name, f.latencyMedianUs.toFixed(0), f.latencyP90Us.toFixed(0), f.mibPerSecond.toFixed(2)];
  return [
    `vsock: ${rounds} round trips of ${MESSAGE_BYTES} bytes, then ${mib} MiB echoed in ${CHUNK_BYTES / 1024} KiB writes`,
    "",
    formatTable([
      ["path", "round trip median µs", "p90 µs", "echo MiB/s"],
      row("host Unix socket to an echo process (floor)", floor),
      row("petasan vsock to the guest's echo (CONNECT)", vsock),
      ["petasan / floor", (vsock.latencyMedianUs / floor.latencyMedianUs).toFixed(1), (vsock.latencyP90Us / floor.latencyP90Us).toFixed(1), (vsock.mibPerSecond / floor.mibPerSecond).toFixed(3)],
    ]),
  ].join("\n");
}

async function main(argv: string[]): Promise<void> {
  const unavailable = kvmUnavailableReason();
  if (unavailable) {
    console.log(`vsock: skipped, ${unavailable}`);
    return;
  }
  const rounds = intOption(argv, "rounds", 200);
  const mib = intOption(argv, "mib", 4);
  const workDir = await mkdtemp(path.join(tmpdir(), "petasan-vsock-bench-"));
  try {
    const floor = await floorFigures(workDir, rounds, mib);
    const vsock = await petasanFigures(workDir, rounds, mib);
    console.log(report(rounds, mib, floor, vsock));
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`vsock: ${e instanceof BenchError ? e.message : ((e as Error).stack ?? e)}\n`);
    process.exit(1);
  },
);
