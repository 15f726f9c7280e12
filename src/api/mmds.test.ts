import assert from "node:assert/strict";
import { FakeHostFiles } from "./fake-host-files.js";
import { test } from "node:test";
import { DEFAULT_MACHINE_CONFIG, VmResources } from "../config/index.js";
import type { Action, ActionResult } from "./actions.js";
import { Controller } from "./controller.js";
import { FakeVmmBackend } from "./fake-vmm-backend.js";
import { parseRequest } from "./routes.js";

function setup(options: { mmdsSizeLimit?: number } = {}) {
  const backend = new FakeVmmBackend();
  const controller = new Controller({ backend, vmmVersion: "0.1.0", resources: new VmResources(options), hostFiles: new FakeHostFiles() });
  return { backend, controller };
}

const body = (r: ActionResult) => (r.ok ? JSON.stringify(r.data) : `${r.error.status} ${r.error.faultMessage}`);
const eth0: Action = { kind: "putNetworkInterface", networkInterface: { iface_id: "eth0", host_dev_name: "tap0" } };

test("routes: GET/PUT/PATCH /mmds and PUT /mmds/config", () => {
  assert.deepEqual(parseRequest("GET", "/mmds", undefined), { kind: "getMmds" });
  assert.deepEqual(parseRequest("PUT", "/mmds", '{"a": [1, "b"]}'), { kind: "putMmds", data: { a: [1, "b"] } });
  assert.deepEqual(parseRequest("PATCH", "/mmds", '{"a": null}'), { kind: "patchMmds", data: { a: null } });
  assert.deepEqual(parseRequest("PUT", "/mmds/config", '{"network_interfaces": ["eth0"], "version": "V2"}'), {
    kind: "putMmdsConfig",
    config: { version: "V2", network_interfaces: ["eth0"], imds_compat: false },
  });
  assert.throws(() => parseRequest("PUT", "/mmds/config", '{"version": "V3", "network_interfaces": []}'), /unknown variant `V3`, expected `V1` or `V2`/);
  assert.throws(() => parseRequest("PUT", "/mmds/config", '{"version": "V2"}'), /missing field `network_interfaces`/);
  assert.throws(() => parseRequest("PUT", "/mmds/config", '{"network_interfaces": [], "ipv4_address": ""}'), /ipv4_address/);
  assert.throws(() => parseRequest("PUT", "/mmds", "{nope"), /deserializing the json body/);
  assert.throws(() => parseRequest("PUT", "/mmds/other", "{}"), /^ActionError: Unrecognized PUT request path `other`\.$/);
});

test("the data store: empty reads {}, PATCH before PUT is refused, merge patch after", async () => {
  const { controller } = setup();
  assert.equal(body(await controller.handle({ kind: "getMmds" })), "{}");
  assert.equal(body(await controller.handle({ kind: "patchMmds", data: { a: 1 } })), "400 MMDS error: The MMDS data store is not initialized.");
  await controller.handle({ kind: "putMmds", data: { latest: { "meta-data": { "ami-id": "dummy", z: 1 } }, keep: true } });
  await controller.handle({ kind: "patchMmds", data: { latest: { "meta-data": { "ami-id": "other", z: null, n: { x: "y" } } } } });
  assert.equal(body(await controller.handle({ kind: "getMmds" })), '{"keep":true,"latest":{"meta-data":{"ami-id":"other","n":{"x":"y"}}}}');
});

test("the size limit answers 413 with Firecracker's message and leaves the store as it was", async () => {
  const { controller } = setup();
  const fill = "a".repeat(51137);
  // {"latest":{"meta-data":{"ami-id":"smth","secret_key":"..."}}} is then exactly 51200 bytes: allowed.
  assert.deepEqual(await controller.handle({ kind: "putMmds", data: { latest: { "meta-data": { "ami-id": "smth", secret_key: fill } } } }), { ok: true });
  const over = await controller.handle({ kind: "patchMmds", data: { latest: { "meta-data": { secret_key2: "b".repeat(10) } } } });
  assert.equal(body(over), "413 MMDS limit exceeded error: The MMDS patch request doesn't fit.");
  assert.doesNotMatch(body(await controller.handle({ kind: "getMmds" })), /secret_key2/);
  const small = setup({ mmdsSizeLimit: 10 }).controller;
  assert.equal(body(await small.handle({ kind: "putMmds", data: { abcdefgh: 1 } })), "413 MMDS limit exceeded error: The MMDS patch request doesn't fit.");
  assert.deepEqual(await small.handle({ kind: "putMmds", data: { a: 1 } }), { ok: true });
});

test("PUT /mmds/config: Firecracker's checks, pre-boot only, shown in GET /vm/config", async () => {
  const { controller } = setup();
  const config = (c: object): Action => ({ kind: "putMmdsConfig", config: { version: "V2", imds_compat: false, network_interfaces: ["eth0"], ...c } });
  assert.equal(
    body(await controller.handle(config({}))),
    "400 MMMDS config error: The list of network interface IDs provided contains at least one ID that does not correspond to any existing network interface.",
  );
  await controller.handle(eth0);
  assert.equal(body(await controller.handle(config({ network_interfaces: [] }))), "400 MMMDS config error: The list of network interface IDs that allow forwarding MMDS requests is empty.");
  assert.equal(body(await controller.handle(config({ ipv4_address: "169.254.0.7" }))), "400 MMMDS config error: The MMDS IPv4 address is not link local.");
  assert.equal(body(await controller.handle(config({ ipv4_address: "10.0.0.1" }))), "400 MMMDS config error: The MMDS IPv4 address is not link local.");
  assert.deepEqual(await controller.handle(config({ ipv4_address: "169.254.169.250" })), { ok: true });
  assert.deepEqual(await controller.handle(config({})), { ok: true });
  const vmConfig = await controller.handle({ kind: "getVmConfig" });
  assert.deepEqual(vmConfig.ok && (vmConfig.data as { "mmds-config"?: object })["mmds-config"], {
    version: "V2", network_interfaces: ["eth0"], ipv4_address: "169.254.169.254", imds_compat: false,
  });
});

test("the data store reaches the VM at boot and after each change; after boot without MMDS it is not initialized", async () => {
  const { backend, controller } = setup();
  await controller.handle({ kind: "putBootSource", bootSource: { kernel_image_path: "/k" } });
  await controller.handle(eth0);
  await controller.handle({ kind: "putMmdsConfig", config: { version: "V1", imds_compat: true, network_interfaces: ["eth0"] } });
  await controller.handle({ kind: "putMmds", data: { b: "1", a: "2" } });
  await controller.handle({ kind: "instanceStart" });
  const start = backend.calls[0];
  assert.equal(start.method, "start");
  assert.deepEqual(start.method === "start" && start.extras, { mmdsData: '{"a":"2","b":"1"}' });
  assert.deepEqual(start.method === "start" && start.config["mmds-config"], { version: "V1", imds_compat: true, network_interfaces: ["eth0"], ipv4_address: "169.254.169.254" });
  assert.equal(body(await controller.handle({ kind: "putMmdsConfig", config: { version: "V2", imds_compat: false, network_interfaces: ["eth0"] } })), "400 The requested operation is not supported after starting the microVM.");
  await controller.handle({ kind: "patchMmds", data: { c: ["x"] } });
  assert.deepEqual(backend.calls.at(-1), { method: "updateMmds", dataJson: '{"a":"2","b":"1","c":["x"]}' });

  const bare = setup();
  await bare.controller.handle({ kind: "putBootSource", bootSource: { kernel_image_path: "/k" } });
  await bare.controller.handle({ kind: "instanceStart" });
  assert.equal(body(await bare.controller.handle({ kind: "getMmds" })), "400 MMDS error: The MMDS data store is not initialized.");
  assert.equal(body(await bare.controller.handle({ kind: "putMmds", data: {} })), "400 MMDS error: The MMDS data store is not initialized.");
});

test("a config file's mmds-config is checked against its network interfaces", () => {
  const base = { "boot-source": { kernel_image_path: "/k" }, "machine-config": DEFAULT_MACHINE_CONFIG, drives: [] };
  assert.throws(
    () => VmResources.fromConfig({ ...base, "network-interfaces": [], "mmds-config": { version: "V2", imds_compat: false, network_interfaces: ["eth0"] } }),
    /mmds-config: MMMDS config error: The list of network interface IDs provided/,
  );
});
