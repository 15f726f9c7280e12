/**
 * What the programs that run Firecracker do, replayed against petasan (facts from their sources, no code):
 * - firecracker-go-sdk (and so firectl and firecracker-containerd), machine.go/handlers.go/command_builder.go:
 *   starts `firecracker --api-sock P --id <uuid> --no-seccomp`, polls the socket with GET /machine-config,
 *   creates the log and metrics FIFOs (mkfifo 0700) and reads the log FIFO without blocking, then over one
 *   kept-alive connection (Go's http.Transport) PUTs /logger, /metrics, /machine-config (and GETs it back),
 *   /boot-source, /drives/1 and /actions InstanceStart, with Go's JSON (fields in alphabetical order).
 * - Kata Containers' Firecracker driver, virtcontainers/fc.go: runs `--version` and parses the first line's
 *   second word as semver (>= 0.21.1), then runs `--api-sock S --config-file F` where F always has a
 *   `vsock` section, a logger and metrics on FIFOs, and a drive.
 * The guests are the small test guests (test/guests), not Linux, so each boot takes well under a second.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { closeSync, constants, existsSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { buildTestGuest } from "../guests/build.js";
import { kvmSkipReason } from "./kvm-available.js";
import { runPetasan, startPetasan, type Running } from "./petasan-process.js";

const skip = kvmSkipReason() ?? false;
/** Kills a petasan that hangs; generous because two test processes share two cores. */
const PROCESS_TIMEOUT_MS = 30_000;

const workDir = mkdtempSync(path.join(tmpdir(), "petasan-fc-clients-"));
const children: Running[] = [];
/** Stop each FIFO reader's timer, then close its fd: a read on a closed (or reused) fd must never happen. */
const fifoClosers: (() => void)[] = [];
after(() => {
  for (const child of children) child.child.kill("SIGKILL");
  for (const close of fifoClosers) close();
  rmSync(workDir, { recursive: true, force: true });
});

function start(args: string[]): Running {
  const running = startPetasan(args, PROCESS_TIMEOUT_MS);
  children.push(running);
  return running;
}

/** The SDK's createFifo: mkfifo with mode 0700 (Node has no mkfifo of its own). */
function mkfifo(name: string): string {
  const fifo = path.join(workDir, name);
  execFileSync("mkfifo", ["-m", "0700", fifo]);
  return fifo;
}

/**
 * A reader like the SDK's captureFifoToFile: the FIFO opened O_RDONLY|O_NONBLOCK before petasan opens it,
 * drained by polling (EAGAIN: nothing yet; 0 bytes: no writer yet).
 */
function fifoReader(fifo: string): { text(): string } {
  const fd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  let text = "";
  const buffer = Buffer.alloc(65536);
  const timer = setInterval(() => {
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buffer);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "EAGAIN") return;
        // The file's `after` closed the fd while this timer was still due: the reader is done.
        if (code === "EBADF") return clearInterval(timer);
        throw error;
      }
      if (n === 0) return;
      text += buffer.toString("utf8", 0, n);
    }
  }, 20);
  timer.unref();
  fifoClosers.push(() => {
    clearInterval(timer);
    closeSync(fd);
  });
  return { text: () => text };
}

interface GoResponse {
  status: number;
  text: string;
}

/**
 * Go's net/http over the API socket as the SDK's NewUnixSocketTransport sets it up: one kept-alive
 * connection reused for every request, go-openapi's headers, the body as encoding/json writes it.
 */
function goClient(socketPath: string) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const sockets = new Set<unknown>();
  const send = (method: string, url: string, body?: object): Promise<GoResponse> => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string | number> = { "User-Agent": "Go-http-client/1.1", Accept: "application/json", "Accept-Encoding": "gzip" };
    if (payload !== undefined) {
      headers["Content-Type"] = "application/json";
      headers["Content-Length"] = Buffer.byteLength(payload);
    }
    return new Promise((resolve, reject) => {
      const outgoing = request({ socketPath, method, path: url, host: "localhost", headers, agent }, (incoming) => {
        let text = "";
        incoming.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
        incoming.on("end", () => resolve({ status: incoming.statusCode ?? 0, text }));
      });
      outgoing.on("socket", (socket) => sockets.add(socket));
      outgoing.on("error", reject);
      outgoing.end(payload);
    });
  };
  return { send, connections: () => sockets.size, close: () => agent.destroy() };
}

/** The SDK's waitForSocket: stat the socket every 10 ms, then GET /machine-config until it answers. */
async function waitForSocket(socketPath: string, petasan: Running): Promise<void> {
  let ended = false;
  void petasan.finished.then(() => (ended = true));
  for (;;) {
    if (ended) throw new Error(`petasan ended before serving ${socketPath}: ${JSON.stringify(await petasan.finished)}`);
    if (existsSync(socketPath)) {
      const client = goClient(socketPath);
      try {
        if ((await client.send("GET", "/machine-config")).status === 200) return;
      } catch {
        // not listening yet
      } finally {
        client.close();
      }
    }
    await sleep(10);
  }
}

/** Kata's parseVersion + checkVersion: first line, second word, "v" trimmed, semver >= 0.21.1. */
function kataVersion(output: string): string {
  const fields = output.split("\n")[0].split(" ");
  assert.ok(fields.length > 1, `malformed --version output: ${JSON.stringify(output)}`);
  const version = fields[1].trim().replace(/^v/, "");
  const match = /^(\d+)\.(\d+)\.(\d+)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/.exec(version);
  assert.ok(match, `not semver: ${version}`);
  const [major, minor, patch] = match.slice(1).map(Number);
  assert.ok(major > 0 || minor > 21 || (minor === 21 && patch >= 1), `${version} is below Kata's minimum 0.21.1`);
  return version;
}

test("--version: Firecracker's line first (Kata parses it as semver >= 0.21.1), then petasan's", async () => {
  const finished = await runPetasan(["--version"], PROCESS_TIMEOUT_MS);
  assert.equal(finished.code, 0, finished.stderr);
  const lines = finished.stdout.trimEnd().split("\n");
  assert.match(lines[0], /^Firecracker v\d+\.\d+\.\d+/);
  assert.equal(kataVersion(finished.stdout), lines[0].slice("Firecracker v".length));
  assert.match(lines[1], /^petasan v\d+\.\d+\.\d+/);
});

test("--http-api-max-payload-size is honoured, and a missing kernel is refused at the PUT", async () => {
  const socketPath = path.join(workDir, "limit.sock");
  const petasan = start(["--api-sock", socketPath, "--http-api-max-payload-size", "250"]);
  await waitForSocket(socketPath, petasan);
  const client = goClient(socketPath);
  const big = await client.send("PUT", "/boot-source", { kernel_image_path: "k".repeat(236) });
  assert.equal(big.status, 400);
  assert.match(big.text, /Request payload with size 260 is larger than the limit of 250 allowed by server/);
  const missing = await goClient(socketPath).send("PUT", "/boot-source", { kernel_image_path: path.join(workDir, "no-such-vmlinux") });
  assert.equal(missing.status, 400);
  assert.equal(JSON.parse(missing.text).fault_message, "Boot source error: The kernel file cannot be opened: No such file or directory (os error 2)");
  client.close();
  petasan.child.kill("SIGTERM");
  assert.equal((await petasan.finished).code, 0);
});

test("firecracker-go-sdk's default start: its argv, FIFOs and request sequence boot the guest", { skip }, async () => {
  const kernel = await buildTestGuest("echo");
  const rootfs = path.join(workDir, "sdk-root.img");
  writeFileSync(rootfs, Buffer.alloc(1 << 20));
  const socketPath = path.join(workDir, "sdk.sock");
  const vmid = "6ba7b810-9dad-41d1-80b4-00c04fd430c8";

  const petasan = start(["--api-sock", socketPath, "--id", vmid, "--no-seccomp"]);
  await waitForSocket(socketPath, petasan);
  const logFifo = mkfifo("sdk.log.fifo");
  const metricsFifo = mkfifo("sdk.metrics.fifo");
  const log = fifoReader(logFifo);
  const metrics = fifoReader(metricsFifo);

  const client = goClient(socketPath);
  const expectNoContent = async (method: string, url: string, body: object) => {
    const response = await client.send(method, url, body);
    assert.equal(response.status, 204, `${method} ${url}: ${response.text}`);
  };
  await expectNoContent("PUT", "/logger", { level: "Debug", log_path: logFifo, show_level: true, show_log_origin: false });
  await expectNoContent("PUT", "/metrics", { metrics_path: metricsFifo });
  await expectNoContent("PUT", "/machine-config", { mem_size_mib: 128, smt: false, vcpu_count: 1 });
  const machine = await client.send("GET", "/machine-config");
  assert.equal(machine.status, 200);
  // The SDK's models.MachineConfiguration validates cpu_template against Firecracker's enum: none is set.
  assert.deepEqual(JSON.parse(machine.text), { vcpu_count: 1, mem_size_mib: 128, smt: false, track_dirty_pages: false, huge_pages: "None" });
  await expectNoContent("PUT", "/boot-source", { boot_args: "console=ttyS0 reboot=k panic=1 pci=off", kernel_image_path: kernel });
  await expectNoContent("PUT", "/drives/1", { drive_id: "1", is_read_only: false, is_root_device: true, path_on_host: rootfs });
  await expectNoContent("PUT", "/actions", { action_type: "InstanceStart" });
  assert.equal(client.connections(), 1, "every request went over one kept-alive connection");

  await petasan.waitFor("echo: ready\n");
  const info = JSON.parse((await client.send("GET", "/")).text) as { id: string; state: string };
  assert.deepEqual([info.id, info.state], [vmid, "Running"]);
  petasan.child.stdin!.write("q");
  const finished = await petasan.finished;
  client.close();
  assert.equal(finished.code, 0, finished.stderr);
  assert.match(finished.stdout, /echo: bye\n/);
  assert.doesNotMatch(finished.stderr, /seccomp/, "--no-seccomp is honoured silently, as in Firecracker");
  await sleep(100);
  assert.ok(log.text().length > 0, "the log FIFO got petasan's log lines");
  const lastMetrics = JSON.parse(metrics.text().trimEnd().split("\n").at(-1)!) as { put_api_requests: Record<string, number> };
  assert.equal(lastMetrics.put_api_requests.drive_count, 1, metrics.text());
});

/** Kata's config file (types.FcConfig as fc.go fills it), with the test guest as its kernel. */
function kataConfig(kernel: string, rootfs: string, withVsock: boolean): object {
  return {
    "boot-source": { boot_args: "console=ttyS0 reboot=k panic=1 pci=off", kernel_image_path: kernel },
    "machine-config": { mem_size_mib: 128, smt: false, vcpu_count: 1 },
    ...(withVsock && { vsock: { guest_cid: 3, uds_path: path.join(workDir, "kata.hvsock"), vsock_id: "root" } }),
    logger: { level: "Error", log_path: mkfifo(`kata-${withVsock}.log.fifo`) },
    metrics: { metrics_path: mkfifo(`kata-${withVsock}.metrics.fifo`) },
    drives: [{ drive_id: "rootfs", is_read_only: true, is_root_device: false, path_on_host: rootfs }],
  };
}

test("Kata's --config-file, vsock section included, boots the guest with petasan listening on uds_path", { skip }, async () => {
  const configPath = path.join(workDir, "kata.json");
  const rootfs = path.join(workDir, "kata-root.img");
  writeFileSync(rootfs, Buffer.alloc(1 << 20));
  writeFileSync(configPath, JSON.stringify(kataConfig(await buildTestGuest("echo"), rootfs, true)));
  const socketPath = path.join(workDir, "kata-ok.sock");
  const petasan = start(["--api-sock", socketPath, "--config-file", configPath]);
  await petasan.waitFor("echo: ready\n");
  assert.ok(statSync(path.join(workDir, "kata.hvsock")).isSocket(), "the vsock device listens on uds_path");
  petasan.child.stdin!.write("q");
  const finished = await petasan.finished;
  assert.equal(finished.code, 0, finished.stderr);
  assert.equal(existsSync(socketPath), false);
  assert.equal(existsSync(path.join(workDir, "kata.hvsock")), false, "uds_path is removed when the VM ends");
});

test("--log-path and --metrics-path are opened at start, as Firecracker does: a bad one ends petasan at once", async () => {
  const badLog = path.join(workDir, "no-such-dir", "fc.log");
  const log = await runPetasan(["--api-sock", path.join(workDir, "log.sock"), "--log-path", badLog], PROCESS_TIMEOUT_MS);
  assert.equal(log.code, 1);
  assert.equal(log.stderr, "petasan: Could not initialize logger: Failed to open target file: No such file or directory (os error 2)\n");
  const metrics = await runPetasan(["--api-sock", path.join(workDir, "metrics.sock"), "--metrics-path", badLog], PROCESS_TIMEOUT_MS);
  assert.equal(metrics.code, 1);
  assert.match(metrics.stderr, /^petasan: Could not initialize metrics: Cannot initialize the metrics system due to bad user input: No such file or directory \(os error 2\)\n$/);
});

test("the jailer's --start-time-us/--start-time-cpu-us/--parent-cpu-time-us feed api_server.process_startup_time_*", { skip }, async () => {
  const configPath = path.join(workDir, "start-times.json");
  const metricsPath = path.join(workDir, "start-times.metrics");
  writeFileSync(configPath, JSON.stringify({ "boot-source": { kernel_image_path: await buildTestGuest("long64") }, metrics: { metrics_path: metricsPath } }));
  // CLOCK_MONOTONIC in microseconds, as the jailer passes it.
  const startUs = Number(process.hrtime.bigint() / 1000n);
  const finished = await runPetasan(
    ["--api-sock", path.join(workDir, "start-times.sock"), "--config-file", configPath,
      "--start-time-us", String(startUs), "--start-time-cpu-us", "0", "--parent-cpu-time-us", "5000"],
    PROCESS_TIMEOUT_MS,
  );
  assert.equal(finished.code, 0, finished.stderr);
  const elapsedUs = Number(process.hrtime.bigint() / 1000n) - startUs;
  const lines = readFileSync(metricsPath, "utf8").trimEnd().split("\n");
  const { api_server } = JSON.parse(lines.at(-1)!) as { api_server: { process_startup_time_us: number; process_startup_time_cpu_us: number } };
  assert.ok(api_server.process_startup_time_us > 0 && api_server.process_startup_time_us < elapsedUs, JSON.stringify(api_server));
  assert.ok(api_server.process_startup_time_cpu_us > 5000, JSON.stringify(api_server));
});
