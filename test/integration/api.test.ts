/**
 * The Firecracker-compatible modes end to end on a real /dev/kvm, with the tiny test guests:
 *   node dist/src/cli/main.js --api-sock <tmp>/api.sock          (Firecracker's getting-started sequence)
 *   node dist/src/cli/main.js --config-file <file> [--no-api]
 * driven over the socket with a plain HTTP client. The `echo` guest prints "echo: ready", echoes serial
 * input uppercased, and resets on 'q', which ends the petasan process with exit code 0.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { requestOverSocket, type ApiResponse } from "../../src/api/api-client.js";
import { buildTestGuest } from "../guests/build.js";
import { kvmSkipReason } from "./kvm-available.js";
import { runPetasan, startPetasan, type Running } from "./petasan-process.js";
import { waitForApi } from "./api-process.js";

const skip = kvmSkipReason() ?? false;
/** Kills a petasan that hangs; generous because two test processes share two cores. */
const PROCESS_TIMEOUT_MS = 30_000;
/** Lets bytes written to petasan's stdin reach the device thread (a pipe hop, well under a millisecond). */
const INPUT_DELIVERY_ALLOWANCE_MS = 500;

const workDir = mkdtempSync(path.join(tmpdir(), "petasan-api-test-"));
const children: Running[] = [];
after(() => {
  for (const child of children) child.child.kill("SIGKILL");
  rmSync(workDir, { recursive: true, force: true });
});

function start(args: string[]): Running {
  const running = startPetasan(args, PROCESS_TIMEOUT_MS);
  children.push(running);
  return running;
}

function stateOf(response: ApiResponse): unknown {
  return (response.json as { state?: unknown }).state;
}

function assertFault(response: ApiResponse, pattern: RegExp): void {
  assert.equal(response.status, 400, response.text);
  assert.match((response.json as { fault_message: string }).fault_message, pattern);
}

function metricsLines(file: string): Record<string, any>[] {
  return readFileSync(file, "utf8").trimEnd().split("\n").map((line) => JSON.parse(line));
}

test("API mode: getting-started sequence, pause/resume, faults, metrics, Ctrl+Alt+Del, exit 0 on guest reset", { skip }, async () => {
  const kernel = await buildTestGuest("echo");
  const socketPath = path.join(workDir, "api.sock");
  const metricsPath = path.join(workDir, "metrics.json");
  const petasan = start(["--api-sock", socketPath]);
  const api = (method: string, url: string, body?: object | string) => requestOverSocket(socketPath, method, url, body);

  assert.equal(stateOf(await waitForApi(socketPath, petasan)), "Not started");
  assert.equal((await api("PUT", "/boot-source", { kernel_image_path: kernel, boot_args: "console=ttyS0 reboot=k panic=1" })).status, 204);
  assert.equal((await api("PUT", "/machine-config", { vcpu_count: 1, mem_size_mib: 128 })).status, 204);
  assert.equal((await api("PUT", "/metrics", { metrics_path: metricsPath })).status, 204);
  assertFault(await api("PUT", "/boot-source", {}), /missing field `kernel_image_path`/);
  assertFault(await api("PUT", "/actions", { action_type: "Reboot" }), /unknown variant `Reboot`/);
  assertFault(await api("PATCH", "/vm", { state: "Paused" }), /not supported before starting/);
  assert.equal((await api("PUT", "/actions", { action_type: "InstanceStart" })).status, 204);
  await petasan.waitFor("echo: ready\n");
  assert.equal(stateOf(await api("GET", "/")), "Running");

  assert.equal((await api("PATCH", "/vm", { state: "Paused" })).status, 204);
  assert.equal(stateOf(await api("GET", "/")), "Paused");
  assert.equal((await api("PUT", "/actions", { action_type: "FlushMetrics" })).status, 204);
  petasan.child.stdin!.write("abc");
  await sleep(INPUT_DELIVERY_ALLOWANCE_MS);
  assert.equal((await api("PUT", "/actions", { action_type: "FlushMetrics" })).status, 204);
  // While paused the input is waiting in the UART, and the guest has made no exit at all.
  const whilePaused = metricsLines(metricsPath).at(-1)!;
  assert.deepEqual(
    [whilePaused.vcpu.exit_io_in, whilePaused.vcpu.exit_io_out, whilePaused.vcpu.exit_mmio_read, whilePaused.vcpu.exit_mmio_write],
    [0, 0, 0, 0],
    JSON.stringify(whilePaused),
  );
  assert.doesNotMatch(petasan.stdout(), /ABC/);

  assert.equal((await api("PATCH", "/vm", { state: "Resumed" })).status, 204);
  await petasan.waitFor("ABC");
  assert.equal(stateOf(await api("GET", "/")), "Running");

  assertFault(await api("PATCH", "/vm", { state: "Sleeping" }), /deserializing the json body.*unknown variant `Sleeping`/);
  assertFault(await api("PUT", "/machine-config", { vcpu_count: 1, mem_size_mib: 128 }), /not supported after starting/);
  assertFault(await api("PATCH", "/vm", "{not json"), /deserializing the json body/);
  // The echo guest masks the keyboard IRQ, so Ctrl+Alt+Del is delivered and ignored: the guest runs on.
  assert.equal((await api("PUT", "/actions", { action_type: "SendCtrlAltDel" })).status, 204);
  assert.equal(stateOf(await api("GET", "/")), "Running");
  assert.equal((await api("PUT", "/actions", { action_type: "FlushMetrics" })).status, 204);

  const lines = metricsLines(metricsPath);
  assert.equal(lines.length, 3);
  for (const line of lines) assert.equal(typeof line.utc_timestamp_ms, "number");
  // The first line counts the configuration requests that parsed; InstanceStart and its own FlushMetrics are actions.
  assert.deepEqual(lines[0].put_api_requests, { boot_source_count: 1, machine_cfg_count: 1, metrics_count: 1, actions_count: 2 });
  assert.equal(typeof lines[0].latencies_us.pause_vm, "number");
  assert.equal(lines[2].put_api_requests.machine_cfg_fails, 1);
  assert.ok(lines[2].vcpu.exit_io_in > 0, "the guest read the UART after resuming");
  assert.equal(lines[2].uart.rxBytes, 3);

  petasan.child.stdin!.write("q");
  const finished = await petasan.finished;
  assert.equal(finished.code, 0, finished.stderr);
  assert.match(finished.stdout, /echo: bye\n/);
  assert.equal(existsSync(socketPath), false, "the API socket is removed at exit");
  assert.equal(metricsLines(metricsPath).length, 4, "a last metrics line is written when the guest ends");
});

test("--config-file --no-api boots the guest and exits 0 when it resets", { skip }, async () => {
  const configPath = path.join(workDir, "no-api.json");
  const kernel = await buildTestGuest("long64");
  writeFileSync(configPath, JSON.stringify({ "boot-source": { kernel_image_path: kernel }, "machine-config": { vcpu_count: 1, mem_size_mib: 128 } }));
  const finished = await runPetasan(["--config-file", configPath, "--no-api"], PROCESS_TIMEOUT_MS);
  assert.equal(finished.code, 0, finished.stderr);
  assert.match(finished.stdout, /long64: hello from 64-bit\n/);
});

test("--config-file with --api-sock boots at once and serves the API for the running guest", { skip }, async () => {
  const configPath = path.join(workDir, "with-api.json");
  const socketPath = path.join(workDir, "config-api.sock");
  const kernel = await buildTestGuest("echo");
  writeFileSync(configPath, JSON.stringify({ "boot-source": { kernel_image_path: kernel }, "machine-config": { vcpu_count: 2, mem_size_mib: 128 } }));
  const petasan = start(["--config-file", configPath, "--api-sock", socketPath]);
  await petasan.waitFor("echo: ready\n");
  // vCPU 0 may print before vCPU 1's thread has started, so before InstanceStart has completed: wait for it.
  let info = await waitForApi(socketPath, petasan);
  for (let i = 0; i < 50 && stateOf(info) !== "Running"; i++) {
    await sleep(100);
    info = await requestOverSocket(socketPath, "GET", "/");
  }
  assert.equal(stateOf(info), "Running");
  const config = await requestOverSocket(socketPath, "GET", "/vm/config");
  assert.equal((config.json as { "machine-config": { vcpu_count: number } })["machine-config"].vcpu_count, 2);
  petasan.child.stdin!.write("q");
  const finished = await petasan.finished;
  assert.equal(finished.code, 0, finished.stderr);
  assert.equal(existsSync(socketPath), false);
});

test("a config file that does not parse ends petasan with exit code 1 and names the problem", async () => {
  const configPath = path.join(workDir, "broken.json");
  writeFileSync(configPath, JSON.stringify({ "machine-config": { vcpu_count: 1, mem_size_mib: 128 } }));
  const finished = await runPetasan(["--config-file", configPath, "--no-api"], PROCESS_TIMEOUT_MS);
  assert.equal(finished.code, 1);
  assert.match(finished.stderr, /broken\.json.*boot-source/);
});

test("--no-api without --config-file is refused with Firecracker's argument-parsing exit code", async () => {
  const finished = await runPetasan(["--no-api"], PROCESS_TIMEOUT_MS);
  assert.equal(finished.code, 153);
  assert.match(finished.stderr, /--no-api requires --config-file/);
});

test("SIGTERM before boot ends petasan with exit code 0 and removes the socket", async () => {
  const socketPath = path.join(workDir, "signal.sock");
  const petasan = start(["--api-sock", socketPath]);
  assert.equal(stateOf(await waitForApi(socketPath, petasan)), "Not started");
  petasan.child.kill("SIGTERM");
  const finished = await petasan.finished;
  assert.equal(finished.code, 0, finished.stderr);
  assert.equal(existsSync(socketPath), false);
});
