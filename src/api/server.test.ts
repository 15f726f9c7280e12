import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { lstat, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { connect as netConnect, createServer } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { requestOverSocket, type ApiResponse } from "./api-client.js";
import { Controller } from "./controller.js";
import { FIRECRACKER_API_VERSION } from "../config/index.js";
import { FakeHostFiles } from "./fake-host-files.js";
import { FakeVmmBackend } from "./fake-vmm-backend.js";
import { DEFAULT_MAX_PAYLOAD_BYTES, startApiServer, type ApiServer } from "./server.js";

let dir = "";
let socketCount = 0;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "petasan-api-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Harness {
  backend: FakeVmmBackend;
  controller: Controller;
  server: ApiServer;
  call(method: string, path: string, body?: string | object): Promise<ApiResponse>;
}

async function withServer(run: (harness: Harness) => Promise<void>): Promise<void> {
  const socketPath = join(dir, `api-${socketCount++}.sock`);
  const backend = new FakeVmmBackend();
  // The paths below are made up: a fake file system says they open (host-files tests use real files).
  const controller = new Controller({ backend, vmmVersion: "0.1.0", instanceId: "test-vm", hostFiles: new FakeHostFiles() });
  const server = await startApiServer({ socketPath, controller });
  try {
    await run({ backend, controller, server, call: (method, path, body) => requestOverSocket(socketPath, method, path, body) });
  } finally {
    await server.close();
  }
}

/** The sequence of Firecracker's docs/getting-started.md. */
const KERNEL = { kernel_image_path: "/guest/vmlinux", boot_args: "console=ttyS0 reboot=k panic=1 pci=off" };
const ROOTFS = { drive_id: "rootfs", path_on_host: "/guest/rootfs.ext4", is_root_device: true, is_read_only: false };
const MACHINE = { vcpu_count: 2, mem_size_mib: 1024 };
const NET = { iface_id: "net1", guest_mac: "06:00:AC:10:00:02", host_dev_name: "tap0" };

async function configureAndStart(call: Harness["call"]): Promise<void> {
  for (const [path, body] of [
    ["/boot-source", KERNEL],
    ["/drives/rootfs", ROOTFS],
    ["/machine-config", MACHINE],
    ["/network-interfaces/net1", NET],
    ["/actions", { action_type: "InstanceStart" }],
  ] as const) {
    const response = await call("PUT", path, body);
    assert.equal(response.status, 204, `PUT ${path}: ${response.text}`);
    assert.equal(response.text, "");
  }
}

function assertFault(response: ApiResponse, pattern: RegExp | string, status = 400): void {
  assert.equal(response.status, status, response.text);
  assert.equal(response.headers["content-type"], "application/json");
  const message = (response.json as { fault_message: string }).fault_message;
  if (typeof pattern === "string") assert.equal(message, pattern);
  else assert.match(message, pattern);
}

test("getting-started sequence boots the fake VMM with the assembled config", () =>
  withServer(async ({ backend, call }) => {
    await configureAndStart(call);
    assert.equal(backend.calls.length, 1);
    assert.deepEqual(backend.calls[0], {
      method: "start",
      config: {
        "boot-source": KERNEL,
        "machine-config": { ...MACHINE, smt: false, track_dirty_pages: false, huge_pages: "None" },
        drives: [{ ...ROOTFS, cache_type: "Unsafe", io_engine: "Sync" }],
        "network-interfaces": [{ ...NET, guest_mac: "06:00:ac:10:00:02" }],
      },
    });
    const info = await call("GET", "/");
    assert.equal(info.status, 200);
    assert.deepEqual(info.json, { app_name: "petasan", id: "test-vm", state: "Running", vmm_version: "0.1.0" });
  }));

test("GET shapes before boot", () =>
  withServer(async ({ call }) => {
    assert.deepEqual((await call("GET", "/")).json, { app_name: "petasan", id: "test-vm", state: "Not started", vmm_version: "0.1.0" });
    assert.deepEqual((await call("GET", "/version")).json, { firecracker_version: FIRECRACKER_API_VERSION });
    const machine = await call("GET", "/machine-config");
    assert.equal(machine.status, 200);
    assert.deepEqual(machine.json, { vcpu_count: 1, mem_size_mib: 128, smt: false, track_dirty_pages: false, huge_pages: "None" });
    assert.deepEqual((await call("GET", "/vm/config")).json, { "machine-config": machine.json, drives: [], "network-interfaces": [] });
  }));

test("GET /vm/config after configuration has Firecracker's keys", () =>
  withServer(async ({ call }) => {
    await call("PUT", "/entropy", {});
    await call("PUT", "/logger", { log_path: "/tmp/log", level: "warn" });
    await call("PUT", "/metrics", { metrics_path: "/tmp/metrics" });
    await configureAndStart(call);
    const config = (await call("GET", "/vm/config")).json as Record<string, unknown>;
    assert.deepEqual(Object.keys(config).sort(), ["boot-source", "drives", "entropy", "logger", "machine-config", "metrics", "network-interfaces"]);
    assert.deepEqual(config.logger, { log_path: "/tmp/log", level: "Warning" });
    assert.deepEqual(config.metrics, { metrics_path: "/tmp/metrics", emit_id: false });
  }));

test("runtime actions reach the VMM: pause, resume, Ctrl+Alt+Del, flush, drive swap, rate limiters", () =>
  withServer(async ({ backend, call }) => {
    await configureAndStart(call);
    assert.equal((await call("PATCH", "/vm", { state: "Paused" })).status, 204);
    assert.equal(((await call("GET", "/")).json as { state: string }).state, "Paused");
    assert.equal((await call("PATCH", "/vm", { state: "Resumed" })).status, 204);
    assert.equal((await call("PUT", "/actions", { action_type: "SendCtrlAltDel" })).status, 204);
    assert.equal((await call("PUT", "/actions", { action_type: "FlushMetrics" })).status, 204);
    assert.equal((await call("PATCH", "/drives/rootfs", { drive_id: "rootfs", path_on_host: "/guest/other.ext4" })).status, 204);
    assert.equal((await call("PATCH", "/network-interfaces/net1", { iface_id: "net1", rx_rate_limiter: { ops: { size: 10, refill_time: 100 } } })).status, 204);
    assert.deepEqual(backend.calls.slice(1), [
      { method: "pause" },
      { method: "resume" },
      { method: "sendCtrlAltDel" },
      { method: "flushMetrics" },
      { method: "updateDrivePath", driveId: "rootfs", path: "/guest/other.ext4" },
      { method: "updateRateLimiters", update: { device: "network-interface", id: "net1", rx: { ops: { size: 10, refill_time: 100 } }, tx: undefined } },
    ]);
    const config = (await call("GET", "/vm/config")).json as { drives: { path_on_host: string }[] };
    assert.equal(config.drives[0].path_on_host, "/guest/other.ext4");
  }));

test("PATCH /machine-config merges before boot", () =>
  withServer(async ({ call }) => {
    assert.equal((await call("PATCH", "/machine-config", { vcpu_count: 4, huge_pages: "2M" })).status, 204);
    const machine = (await call("GET", "/machine-config")).json as { vcpu_count: number; mem_size_mib: number; huge_pages: string };
    assert.deepEqual([machine.vcpu_count, machine.mem_size_mib, machine.huge_pages], [4, 128, "2M"]);
  }));

const DESERIALIZE = "An error occurred when deserializing the json body of a request: ";
const PRE_BOOT = "The requested operation is not supported before starting the microVM.";
const POST_BOOT = "The requested operation is not supported after starting the microVM.";

/** [method, path, body, expected fault] — sent before boot. */
const PRE_BOOT_FAULTS: [string, string, string | object, string | RegExp][] = [
  // PUT /boot-source
  ["PUT", "/boot-source", { ...KERNEL, kernel: "x" }, `${DESERIALIZE}unknown field \`kernel\`, expected one of \`kernel_image_path\`, \`boot_args\`, \`initrd_path\` at line 1 column 99.`],
  ["PUT", "/boot-source", { kernel_image_path: 5 }, `${DESERIALIZE}invalid type: integer \`5\`, expected a string at line 1 column 22.`],
  ["PUT", "/boot-source", { boot_args: "x" }, `${DESERIALIZE}missing field \`kernel_image_path\` at line 1 column 17.`],
  // PUT /machine-config
  ["PUT", "/machine-config", { ...MACHINE, vcpus: 2 }, /^An error .*: unknown field `vcpus`, expected one of `vcpu_count`, `mem_size_mib`, .* at line 1 column 43\.$/],
  ["PUT", "/machine-config", { ...MACHINE, vcpu_count: 33 }, "Machine config error: The number of vCPUs must be greater than 0, less than 32 and must be 1 or an even number if SMT is enabled."],
  ["PUT", "/machine-config", { ...MACHINE, vcpu_count: 256 }, `${DESERIALIZE}invalid value: integer \`256\`, expected u8 at line 1 column 17.`],
  ["PUT", "/machine-config", { vcpu_count: "-2", mem_size_mib: 128 }, `${DESERIALIZE}invalid type: string "-2", expected u8 at line 1 column 18.`],
  ["PUT", "/machine-config", { vcpu_count: -2, mem_size_mib: 128 }, `${DESERIALIZE}invalid value: integer \`-2\`, expected u8 at line 1 column 16.`],
  // Firecracker's test_api_machine_config sends Python's json.dumps, with a space after the colon.
  ["PUT", "/machine-config", '{"mem_size_mib": 128}', `${DESERIALIZE}missing field \`vcpu_count\` at line 1 column 21.`],
  ["PUT", "/machine-config", '{"vcpu_count": 2}', `${DESERIALIZE}missing field \`mem_size_mib\` at line 1 column 17.`],
  ["PUT", "/machine-config", { mem_size_mib: 128 }, `${DESERIALIZE}missing field \`vcpu_count\` at line 1 column 20.`],
  ["PUT", "/machine-config", { ...MACHINE, cpu_template: "random_string" }, /^An error .*: unknown variant `random_string`, expected one of `None`, `C3`, `T2`, `T2S`, `T2CL`, `T2A`, `host`, `minimal` at line 1 column 66\.$/],
  ["PUT", "/machine-config", { vcpu_count: 3, mem_size_mib: 128, smt: true }, "Machine config error: The number of vCPUs must be greater than 0, less than 32 and must be 1 or an even number if SMT is enabled."],
  // PATCH /machine-config
  ["PATCH", "/machine-config", {}, "Empty PATCH request."],
  ["PATCH", "/machine-config", { smt: "random_string" }, `${DESERIALIZE}invalid type: string "random_string", expected a boolean at line 1 column 22.`],
  ["PATCH", "/machine-config", { mem_size_mib: 0 }, "Machine config error: The memory size (MiB) is either 0, or not a multiple of the configured page size."],
  ["PATCH", "/machine-config", { foo: 1 }, /unknown field `foo`, expected one of `vcpu_count`/],
  // PUT /drives/{id}
  ["PUT", "/drives/rootfs", { ...ROOTFS, size: 1 }, /^An error .*: unknown field `size`, expected one of `drive_id`/],
  ["PUT", "/drives/rootfs", { ...ROOTFS, is_root_device: "yes" }, `${DESERIALIZE}invalid type: string "yes", expected a boolean at line 1 column 79.`],
  ["PUT", "/drives/rootfs", { drive_id: "rootfs", is_root_device: true }, `${DESERIALIZE}missing field \`path_on_host\` at line 1 column 43.`],
  ["PUT", "/drives/other", ROOTFS, "The id from the path does not match the id from the body!"],
  ["PUT", "/drives/rootfs", { ...ROOTFS, socket: "/vhost.sock" }, /socket: petasan does not support vhost-user block devices/],
  ["PUT", "/drives/bad-id", { ...ROOTFS, drive_id: "bad-id" }, "API Resource IDs can only contain alphanumeric characters and underscores."],
  ["PUT", "/drives", ROOTFS, "The ID cannot be empty."],
  // PATCH /drives/{id}
  ["PATCH", "/drives/rootfs", { drive_id: "rootfs", path_on_host: "/x" }, PRE_BOOT],
  ["PATCH", "/drives/rootfs", { drive_id: "rootfs", is_read_only: true }, /unknown field `is_read_only`/],
  // PUT /network-interfaces/{id}
  ["PUT", "/network-interfaces/net1", { ...NET, mac: "x" }, /^An error .*: unknown field `mac`/],
  ["PUT", "/network-interfaces/net1", { ...NET, guest_mac: "06:00:AC:10:00" }, /guest_mac: must be a MAC address/],
  ["PUT", "/network-interfaces/net1", { iface_id: "net1" }, `${DESERIALIZE}missing field \`host_dev_name\` at line 1 column 19.`],
  ["PUT", "/network-interfaces/net2", NET, "The id from the path [net2] does not match the id from the body [net1]!"],
  ["PUT", "/network-interfaces/net1", { ...NET, mtu: 67 }, `${DESERIALIZE}mtu: must be an integer between 68 and 65535.`],
  // PATCH /network-interfaces/{id}
  ["PATCH", "/network-interfaces/net1", { iface_id: "net1" }, PRE_BOOT],
  // PUT /entropy, /logger, /metrics
  ["PUT", "/entropy", { rate_limiter: { bandwidth: { size: 1 } } }, `${DESERIALIZE}missing field \`refill_time\` at line 1 column 39.`],
  ["PUT", "/entropy", { device: 1 }, /unknown field `device`/],
  ["PUT", "/logger", { level: "Loud" }, /^An error .*: level: must be one of "Error", "Warning"/],
  ["PUT", "/logger", { show_level: 1 }, `${DESERIALIZE}invalid type: integer \`1\`, expected a boolean at line 1 column 15.`],
  ["PUT", "/logger", { path: "/x" }, /unknown field `path`/],
  ["PUT", "/metrics", {}, `${DESERIALIZE}missing field \`metrics_path\` at line 1 column 2.`],
  ["PUT", "/metrics", { metrics_path: 7 }, `${DESERIALIZE}invalid type: integer \`7\`, expected a string at line 1 column 17.`],
  ["PUT", "/metrics", { metrics_path: "/m", format: "json" }, /unknown field `format`/],
  // PUT /actions
  ["PUT", "/actions", { action_type: "Reboot" }, `${DESERIALIZE}unknown variant \`Reboot\`, expected one of \`FlushMetrics\`, \`InstanceStart\`, \`SendCtrlAltDel\` at line 1 column 23.`],
  ["PUT", "/actions", {}, `${DESERIALIZE}missing field \`action_type\` at line 1 column 2.`],
  ["PUT", "/actions", { action_type: "InstanceStart", now: true }, /unknown field `now`/],
  ["PUT", "/actions", { action_type: "InstanceStart" }, "Start microvm error: Cannot start microvm without kernel configuration."],
  ["PUT", "/actions", { action_type: "SendCtrlAltDel" }, PRE_BOOT],
  ["PUT", "/actions", { action_type: "FlushMetrics" }, PRE_BOOT],
  // PATCH /vm
  ["PATCH", "/vm", { state: "Paused" }, PRE_BOOT],
  ["PATCH", "/vm", { state: "Stopped" }, `${DESERIALIZE}unknown variant \`Stopped\`, expected \`Paused\` or \`Resumed\` at line 1 column 18.`],
  ["PATCH", "/vm", { state: "Paused", force: true }, /unknown field `force`/],
  // body and path problems
  ["PUT", "/machine-config", '{"vcpu_count": 2,', /^An error occurred when deserializing the json body of a request: .* at line 1, column 18\.$/],
  ["PUT", "/machine-config", "[1, 2]", `${DESERIALIZE}invalid type: sequence, expected a JSON object at line 1 column 6.`],
  ["GET", "/foo", "", "Invalid request method and/or path: GET /foo."],
  ["POST", "/actions", { action_type: "InstanceStart" }, "Invalid request method and/or path: POST /actions."],
  ["DELETE", "/drives/rootfs", "", "Invalid request method and/or path: DELETE /drives/rootfs."],
  ["PUT", "/vm/config", {}, "Invalid request method and/or path: PUT /vm/config."],
  ["PATCH", "/boot-source", KERNEL, "Invalid request method and/or path: PATCH /boot-source."],
  ["GET", "/machine-config", { vcpu_count: 1 }, "GET request cannot have a body."],
  ["PUT", "/boot-source", "", "Empty PUT request."],
  ["PATCH", "/vm", "", "Empty PATCH request."],
];

test("every endpoint's 400 cases before boot", () =>
  withServer(async ({ backend, call }) => {
    for (const [method, path, body, expected] of PRE_BOOT_FAULTS) {
      const response = await call(method, path, body === "" ? undefined : body);
      assert.equal(response.status, 400, `${method} ${path} ${JSON.stringify(body)}: ${response.text}`);
      assertFault(response, expected);
    }
    assert.deepEqual(backend.calls, []);
  }));

test("a second root drive is refused", () =>
  withServer(async ({ call }) => {
    await call("PUT", "/drives/rootfs", ROOTFS);
    const second = await call("PUT", "/drives/other", { ...ROOTFS, drive_id: "other" });
    assertFault(second, 'Drive config error: A root block device already exists! (drive "rootfs")');
  }));

const POST_BOOT_FAULTS: [string, string, object, string | RegExp][] = [
  ["PUT", "/boot-source", KERNEL, POST_BOOT],
  ["PUT", "/machine-config", MACHINE, POST_BOOT],
  ["PATCH", "/machine-config", { vcpu_count: 1 }, POST_BOOT],
  ["PUT", "/drives/rootfs", ROOTFS, POST_BOOT],
  ["PUT", "/network-interfaces/net1", NET, POST_BOOT],
  ["PUT", "/entropy", {}, POST_BOOT],
  ["PUT", "/logger", {}, POST_BOOT],
  ["PUT", "/metrics", { metrics_path: "/m" }, POST_BOOT],
  ["PUT", "/actions", { action_type: "InstanceStart" }, POST_BOOT],
  ["PATCH", "/drives/other", { drive_id: "other", path_on_host: "/x" }, /^Drive config error: Unable to patch the block device: no drive "other" is configured\./],
  ["PATCH", "/drives/rootfs", { drive_id: "rootfs" }, /give path_on_host and\/or rate_limiter/],
  ["PATCH", "/drives/rootfs", { drive_id: "other", path_on_host: "/x" }, "The id from the path does not match the id from the body!"],
  ["PATCH", "/drives/rootfs", { drive_id: "rootfs", path_on_host: 1 }, `${DESERIALIZE}invalid type: integer \`1\`, expected a string at line 1 column 37.`],
  ["PATCH", "/network-interfaces/net9", { iface_id: "net9" }, 'Network config error: no network interface "net9" is configured'],
  ["PATCH", "/vm", { state: "Running" }, /unknown variant `Running`, expected `Paused` or `Resumed`/],
];

test("every endpoint's 400 cases after boot", () =>
  withServer(async ({ backend, call }) => {
    await configureAndStart(call);
    for (const [method, path, body, expected] of POST_BOOT_FAULTS) assertFault(await call(method, path, body), expected);
    assert.deepEqual(backend.calls.map((c) => c.method), ["start"]);
  }));

test("VMM failures become 400s naming the cause", () =>
  withServer(async ({ backend, call }) => {
    backend.failNext.set("start", new Error("KVM_CREATE_VM failed: Permission denied"));
    await call("PUT", "/boot-source", KERNEL);
    assertFault(await call("PUT", "/actions", { action_type: "InstanceStart" }), "Start microvm error: KVM_CREATE_VM failed: Permission denied");
    await call("PUT", "/actions", { action_type: "InstanceStart" });
    backend.failNext.set("pause", new Error("vCPU 1 did not acknowledge the pause"));
    assertFault(await call("PATCH", "/vm", { state: "Paused" }), "Internal VMM error: vCPU 1 did not acknowledge the pause");
  }));

test("an oversized body is refused and the server keeps serving", () =>
  withServer(async ({ call }) => {
    const big = JSON.stringify({ kernel_image_path: "x".repeat(DEFAULT_MAX_PAYLOAD_BYTES) });
    assertFault(await call("PUT", "/boot-source", big), `Request payload with size ${Buffer.byteLength(big)} is larger than the limit of 51200 allowed by server.`);
    assert.equal((await call("GET", "/")).status, 200);
  }));

test("an oversized chunked body (no Content-Length) is refused too", () =>
  withServer(async ({ server, call }) => {
    const response = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const outgoing = request({ socketPath: server.socketPath, method: "PUT", path: "/boot-source", agent: false }, (incoming) => {
        let text = "";
        incoming.on("data", (chunk: Buffer) => (text += chunk.toString()));
        incoming.on("end", () => resolve({ status: incoming.statusCode ?? 0, text }));
      });
      outgoing.on("error", reject);
      for (let i = 0; i < 6; i++) outgoing.write("x".repeat(10_000));
      outgoing.end();
    });
    assert.equal(response.status, 400);
    assert.match(response.text, /is larger than the limit of 51200 allowed by server/);
    assert.equal((await call("GET", "/")).status, 200);
  }));

test("a body that is not UTF-8 is refused", () =>
  withServer(async ({ server }) => {
    const status = await new Promise<number>((resolve, reject) => {
      const body = Buffer.from([0x7b, 0xff, 0x7d]);
      const outgoing = request({ socketPath: server.socketPath, method: "PUT", path: "/entropy", headers: { "Content-Length": body.length }, agent: false }, (incoming) => {
        incoming.resume();
        resolve(incoming.statusCode ?? 0);
      });
      outgoing.on("error", reject);
      outgoing.end(body);
    });
    assert.equal(status, 400);
  }));

/** Leaves a socket file nobody listens on, as a killed VMM would (Node unlinks it on a clean close). */
async function leaveStaleSocket(socketPath: string): Promise<void> {
  const script = `require("node:net").createServer().listen(${JSON.stringify(socketPath)}, () => process.stdout.write("ready"))`;
  const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  await once(child.stdout, "data");
  child.kill("SIGKILL");
  await once(child, "exit");
}

test("a live server keeps its socket; a stale socket file is replaced", async () => {
  const socketPath = join(dir, "taken.sock");
  const live = createServer();
  await new Promise<void>((resolve) => live.listen(socketPath, resolve));
  const options = { socketPath, controller: new Controller({ backend: new FakeVmmBackend(), vmmVersion: "0" }) };
  await assert.rejects(startApiServer(options), /another server is already listening on it/);
  await new Promise<void>((resolve) => live.close(() => resolve()));

  await leaveStaleSocket(socketPath);
  assert.ok((await lstat(socketPath)).isSocket());
  const server = await startApiServer(options);
  assert.equal((await requestOverSocket(socketPath, "GET", "/")).status, 200);
  await server.close();
  await assert.rejects(lstat(socketPath), { code: "ENOENT" });
});

test("a path that is not a socket is never removed", async () => {
  const path = join(dir, "regular-file");
  await writeFile(path, "keep me");
  const controller = new Controller({ backend: new FakeVmmBackend(), vmmVersion: "0" });
  await assert.rejects(startApiServer({ socketPath: path, controller }), /exists and is not a socket; refusing to replace it/);
  assert.equal((await stat(path)).size, 7);
});

/** Sends raw HTTP/1.1 requests over one connection, as a keep-alive client (Go's http.Transport) does. */
async function keptAliveConnection(socketPath: string) {
  const socket = netConnect(socketPath);
  await once(socket, "connect");
  let received = "";
  let closed = false;
  socket.on("data", (chunk: Buffer) => (received += chunk.toString("latin1")));
  socket.on("close", () => (closed = true));
  return {
    socket,
    isClosed: () => closed,
    /** Writes one GET and resolves with the status line of its response. */
    async get(path: string): Promise<string> {
      const start = received.length;
      socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
      for (let waited = 0; !/\r\n\r\n[^]*\}/.test(received.slice(start)); waited += 10) {
        if (closed) throw new Error(`the server closed the connection; received: ${received.slice(start)}`);
        if (waited > 5000) throw new Error("no response");
        await sleep(10);
      }
      return received.slice(start).split("\r\n")[0];
    },
  };
}

test("an idle kept-alive connection stays open past Node's 5 s default and serves the next request", { timeout: 20_000 }, () =>
  withServer(async ({ server }) => {
    const connection = await keptAliveConnection(server.socketPath);
    assert.equal(await connection.get("/"), "HTTP/1.1 200 OK");
    await sleep(6_000);
    assert.equal(connection.isClosed(), false, "the server closed an idle connection");
    assert.equal(await connection.get("/machine-config"), "HTTP/1.1 200 OK");
    connection.socket.destroy();
  }));

test("cpu_template in PUT/PATCH /machine-config is answered with Firecracker's Deprecation header", () =>
  withServer(async ({ call }) => {
    assert.equal((await call("PUT", "/machine-config", { ...MACHINE, cpu_template: "T2" })).headers.deprecation, "true");
    assert.equal((await call("PATCH", "/machine-config", { cpu_template: "None" })).headers.deprecation, "true");
    assert.equal((await call("PUT", "/machine-config", MACHINE)).headers.deprecation, undefined);
    const machine = (await call("GET", "/machine-config")).json as { cpu_template?: string };
    assert.equal(machine.cpu_template, undefined);
  }));

test("MMDS over the API: PUT, PATCH and GET /mmds, PUT /mmds/config, 413 past the limit", () =>
  withServer(async ({ call, backend }) => {
    assert.equal((await call("GET", "/mmds")).text, "{}");
    assert.equal((await call("PUT", "/network-interfaces/net1", NET)).status, 204);
    assert.equal((await call("PUT", "/mmds/config", { version: "V2", network_interfaces: ["net1"] })).status, 204);
    assertFault(await call("PUT", "/mmds/config", { network_interfaces: ["eth9"] }), /^MMMDS config error: The list of network interface IDs provided/);
    assert.equal((await call("PUT", "/mmds", { latest: { "meta-data": { "ami-id": "a" } }, n: 1 })).status, 204);
    assert.equal((await call("PATCH", "/mmds", { n: null, s: "x" })).status, 204);
    const got = await call("GET", "/mmds");
    assert.equal(got.status, 200);
    assert.equal(got.text, '{"latest":{"meta-data":{"ami-id":"a"}},"s":"x"}');
    assertFault(await call("PATCH", "/mmds", { big: "z".repeat(51_180) }), "MMDS limit exceeded error: The MMDS patch request doesn't fit.", 413);
    assert.equal((await call("PUT", "/mmds", '"just a string"')).status, 204);
    assert.equal((await call("GET", "/mmds")).text, '"just a string"');
    await call("PUT", "/boot-source", KERNEL);
    assert.equal((await call("PUT", "/actions", { action_type: "InstanceStart" })).status, 204);
    const start = backend.calls.find((c) => c.method === "start");
    assert.deepEqual(start?.method === "start" && start.extras, { mmdsData: '"just a string"' });
    assert.equal((await call("PUT", "/mmds", { after: "boot" })).status, 204);
    assert.deepEqual(backend.calls.at(-1), { method: "updateMmds", dataJson: '{"after":"boot"}' });
  }));

test("the balloon over HTTP: Firecracker's docs/ballooning.md sequence", () =>
  withServer(async ({ backend, call }) => {
    assertFault(await call("GET", "/balloon"), "Balloon config error: No balloon device found.");
    assertFault(await call("PUT", "/balloon", { amount_mib: 2048, deflate_on_oom: false }), "Balloon config error: Amount of pages requested is too large.");
    assertFault(await call("PUT", "/balloon", { amount_mib: 1 }), /missing field `deflate_on_oom`/);
    assertFault(await call("PUT", "/balloon", { amount_mib: 1, deflate_on_oom: true, free_page_hinting: true }), /petasan does not support balloon free page hinting yet/);
    assert.equal((await call("PUT", "/balloon", { amount_mib: 0, deflate_on_oom: true, stats_polling_interval_s: 1 })).status, 204);
    const got = await call("GET", "/balloon");
    assert.equal(got.status, 200);
    assert.deepEqual(got.json, { amount_mib: 0, deflate_on_oom: true, stats_polling_interval_s: 1, free_page_hinting: false, free_page_reporting: false });
    await configureAndStart(call);
    assert.equal((await call("PATCH", "/balloon", { amount_mib: 256 })).status, 204);
    assert.equal((await call("PATCH", "/balloon/statistics", { stats_polling_interval_s: 5 })).status, 204);
    const stats = await call("GET", "/balloon/statistics");
    assert.equal(stats.status, 200);
    assert.deepEqual(stats.json, backend.balloonStats);
    assert.deepEqual(((await call("GET", "/vm/config")).json as { balloon: unknown }).balloon, {
      amount_mib: 256, deflate_on_oom: true, stats_polling_interval_s: 5, free_page_hinting: false, free_page_reporting: false,
    });
    assertFault(await call("PATCH", "/balloon/hinting/start", {}), /petasan does not support balloon free page hinting yet/);
    assert.deepEqual(backend.calls.slice(1), [{ method: "updateBalloon", amountMib: 256 }, { method: "updateBalloonStatsInterval", seconds: 5 }, { method: "balloonStatistics" }]);
  }));
