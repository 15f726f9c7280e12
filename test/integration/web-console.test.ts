/**
 * `petasan console`'s server without a browser: its API and WebSockets on a real echo-guest VM. Several
 * viewers of one console, a viewer joining late, viewers vanishing mid-stream (nothing leaks), clear errors
 * for bad requests, the allowed paths, snapshots and restores, and the token a non-loopback listener demands
 * of every request.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { WebSocket } from "ws";
import { startConsoleServer, type ConsoleServer } from "../../src/web-console/server.js";
import { parseListenAddress } from "../../src/web-console/listen-address.js";
import { buildTestGuest } from "../guests/build.js";
import { kvmSkipReason } from "./kvm-available.js";
import { startPetasan } from "./petasan-process.js";

const skip = kvmSkipReason();

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function call(base: string, method: string, urlPath: string, options: { body?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(new URL(urlPath, base), { method, headers: options.headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end(options.body);
  });
}

const json = (body: unknown) => ({ body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });
const errorOf = (reply: Reply) => (JSON.parse(reply.body) as { error: string }).error;

/** A console viewer: collects what the server sends; `waitFor` polls it. */
function viewer(base: string, id: string, headers?: Record<string, string>): Promise<{ ws: WebSocket; text: () => string; waitFor: (s: string) => Promise<void>; closed: Promise<number> }> {
  const ws = new WebSocket(new URL(`/api/vms/${id}/console`, base.replace(/^http/, "ws")), { headers });
  let text = "";
  ws.on("message", (data: Buffer) => (text += data.toString()));
  const closed = new Promise<number>((resolve) => ws.on("close", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    ws.once("open", () =>
      resolve({
        ws,
        text: () => text,
        closed,
        waitFor: async (s) => {
          for (let i = 0; !text.includes(s); i++) {
            if (i > 1500) throw new Error(`no "${s}" from the console; got ${JSON.stringify(text)}`);
            await new Promise((r) => setTimeout(r, 20));
          }
        },
      }),
    );
    ws.once("unexpected-response", (req, res) => {
      req.destroy();
      reject(new Error(`upgrade refused: ${res.statusCode}`));
    });
    // After a refusal the connection may reset: that error is the refusal's, already reported.
    ws.on("error", reject);
  });
}

async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; !(await check()); i++) {
    if (i > 250) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const openFds = () => readdirSync("/proc/self/fd").length;

async function withServer(allow: string[], run: (server: ConsoleServer, base: string) => Promise<void>): Promise<void> {
  const server = await startConsoleServer({ listen: parseListenAddress("127.0.0.1:0"), allow });
  try {
    await run(server, server.url);
  } finally {
    await server.close();
  }
}

test("one console, several viewers: all see the output, any can type, a late one gets the scrollback; closed viewers leave nothing", { skip }, async () => {
  const kernel = await buildTestGuest("echo");
  await withServer([path.dirname(kernel)], async (server, base) => {
    const created = await call(base, "POST", "/api/vms", json({ name: "echo", config: { "boot-source": { kernel_image_path: kernel }, "machine-config": { vcpu_count: 1, mem_size_mib: 64 } } }));
    assert.equal(created.status, 201, created.body);
    const vm = JSON.parse(created.body) as { id: string; state: string; vcpus: number; memMib: number };
    assert.deepEqual([vm.state, vm.vcpus, vm.memMib], ["Running", 1, 64]);

    const a = await viewer(base, vm.id);
    const b = await viewer(base, vm.id);
    await Promise.all([a.waitFor("echo: ready"), b.waitFor("echo: ready")]);
    a.ws.send("from a ");
    b.ws.send(Buffer.from("from b"));
    await Promise.all([a.waitFor("FROM A FROM B"), b.waitFor("FROM A FROM B")]);
    const late = await viewer(base, vm.id);
    await late.waitFor("echo: ready\nFROM A FROM B");
    const listed = JSON.parse((await call(base, "GET", "/api/vms")).body) as { vms: { viewers: number }[] };
    assert.equal(listed.vms[0].viewers, 3);

    // A baseline with one viewer open, then many viewers that vanish mid-stream (a browser closing).
    const fds = openFds();
    for (let round = 0; round < 5; round++) {
      const gone = await Promise.all([viewer(base, vm.id), viewer(base, vm.id)]);
      a.ws.send("x");
      await Promise.all(gone.map((v) => v.waitFor("X")));
      gone[0].ws.terminate(); // the TCP connection just drops
      gone[1].ws.close(); // a clean close
    }
    // Event streams (a page's list and plots) that vanish mid-stream unhook from the registry.
    const listeners = server.registry.listenerCount("sample");
    for (let i = 0; i < 5; i++) {
      const events = new WebSocket(new URL("/api/events", base.replace(/^http/, "ws")));
      await new Promise((resolve) => events.once("message", resolve));
      if (i % 2 === 0) events.terminate();
      else events.close();
    }
    b.ws.terminate();
    late.ws.terminate();
    await until("the viewers to be forgotten", () => server.openSockets() === 1);
    await until("the event streams to unhook", () => server.registry.listenerCount("sample") === listeners && server.registry.listenerCount("changed") === listeners);
    await until("the sockets' fds to close", () => openFds() <= fds);
    const details = JSON.parse((await call(base, "GET", `/api/vms/${vm.id}`)).body) as { viewers: number; logs: string[] };
    assert.equal(details.viewers, 1);
    assert.match(details.logs.join("\n"), /VM started/);

    // Stopping the VM closes the remaining viewer with the reason.
    const stopped = await call(base, "POST", `/api/vms/${vm.id}/stop`, json({}));
    assert.equal(JSON.parse(stopped.body).state, "Stopped");
    assert.equal(await a.closed, 1000);
    await until("no socket open", () => server.openSockets() === 0);
  });
});

test("a browser that vanishes without closing its WebSocket (no pong) is dropped by the heartbeat", { skip }, async () => {
  const kernel = await buildTestGuest("echo");
  const server = await startConsoleServer({ listen: parseListenAddress("127.0.0.1:0"), allow: [path.dirname(kernel)], heartbeatMs: 100 });
  try {
    const created = await call(server.url, "POST", "/api/vms", json({ config: { "boot-source": { kernel_image_path: kernel } } }));
    const id = (JSON.parse(created.body) as { id: string }).id;
    const answering = await viewer(server.url, id);
    // A client that never answers pings, as a dead peer never does.
    const silent = new WebSocket(new URL(`/api/vms/${id}/console`, server.url.replace(/^http/, "ws")), { autoPong: false });
    await new Promise((resolve) => silent.once("open", resolve));
    assert.equal(server.openSockets(), 2);
    await until("the silent viewer to be dropped", () => server.openSockets() === 1);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(server.openSockets(), 1, "the viewer that answers stays");
    answering.ws.send("still here");
    await answering.waitFor("STILL HERE");
    answering.ws.close();
  } finally {
    await server.close();
  }
});

test("bad requests get a status and a one-line error, and change nothing", { skip }, async () => {
  const kernel = await buildTestGuest("echo");
  await withServer([path.dirname(kernel)], async (server, base) => {
    const config = { "boot-source": { kernel_image_path: kernel }, "machine-config": { vcpu_count: 1, mem_size_mib: 64 } };
    const cases: [string, Promise<Reply>, number, RegExp][] = [
      ["unknown VM", call(base, "GET", "/api/vms/vm9"), 404, /no VM "vm9"/],
      ["unknown resource", call(base, "GET", "/api/things"), 404, /no API resource/],
      ["wrong method", call(base, "PATCH", "/api/vms", json({})), 405, /allowed: GET, POST/],
      ["not JSON", call(base, "POST", "/api/vms", { body: "config=1", headers: { "Content-Type": "application/x-www-form-urlencoded" } }), 415, /Content-Type: application\/json/],
      ["broken JSON", call(base, "POST", "/api/vms", { body: "{", headers: { "Content-Type": "application/json" } }), 400, /not JSON/],
      ["no config", call(base, "POST", "/api/vms", json({})), 400, /missing field `config`/],
      ["bad config", call(base, "POST", "/api/vms", json({ config: { "boot-source": { kernel_image_path: kernel }, "machine-config": { vcpu_count: 0, mem_size_mib: 64 } } })), 400, /vcpu_count/],
      ["bad config text", call(base, "POST", "/api/vms", json({ config: "{\"boot-source\": " })), 400, /invalid VM config/],
      ["file outside --allow", call(base, "POST", "/api/vms", json({ config: { "boot-source": { kernel_image_path: "/etc/passwd" } } })), 400, /kernel_image_path: \/etc\/passwd is outside the paths/],
      ["drive outside --allow", call(base, "POST", "/api/vms", json({ config: { ...config, drives: [{ drive_id: "rootfs", path_on_host: "/etc/shadow", is_root_device: true }] } })), 400, /drives\[rootfs\]\.path_on_host: \/etc\/shadow is outside/],
      ["network without --allow-net", call(base, "POST", "/api/vms", json({ config: { ...config, "network-interfaces": [{ iface_id: "eth0", host_dev_name: "tap0" }] } })), 400, /--allow-net/],
      ["too large", call(base, "POST", "/api/vms", json({ config: "x".repeat(1024 * 1024 + 10) })), 413, /at most 1048576/],
      ["static file", call(base, "GET", "/../../etc/passwd"), 404, /no file/],
      ["malformed encoding", call(base, "GET", "/api/vms/%E0%A4%A"), 400, /malformed percent-encoding/],
    ];
    for (const [what, reply, status, message] of cases) {
      const r = await reply;
      assert.equal(r.status, status, `${what}: ${r.body}`);
      assert.match(errorOf(r), message, what);
    }
    assert.deepEqual(JSON.parse((await call(base, "GET", "/api/vms")).body), { vms: [] }, "no VM was created");

    const created = JSON.parse((await call(base, "POST", "/api/vms", json({ config, start: false }))).body) as { id: string; state: string };
    assert.equal(created.state, "Created");
    const actions: [string, string, number, RegExp][] = [
      ["pause", "pause(): the VM is Created", 409, /pause\(\): the VM is Created/],
      ["dance", "", 404, /no action "dance"/],
      ["snapshot", "", 409, /snapshot: the VM is Created; only a running or paused VM can be saved/],
      ["restore", "", 404, /no action "restore"/],
    ];
    for (const [action, , status, message] of actions) {
      const r = await call(base, "POST", `/api/vms/${created.id}/${action}`, json({}));
      assert.equal(r.status, status, `${action}: ${r.body}`);
      assert.match(errorOf(r), message);
    }
    assert.equal((await call(base, "POST", `/api/vms/${created.id}/start`, json({}))).status, 200);
    const again = await call(base, "POST", `/api/vms/${created.id}/resume`, json({}));
    assert.equal(again.status, 409);
    const swap = await call(base, "PUT", `/api/vms/${created.id}/drives/rootfs`, json({ path: kernel }));
    assert.equal(swap.status, 404);
    assert.match(errorOf(swap), /has no drive "rootfs"/);

    // WebSockets: unknown VM, unknown path, another site's page.
    await assert.rejects(viewer(base, "vm9"), /404/);
    await assert.rejects(viewer(base, created.id, { Origin: "http://evil.example" }), /403/);
    await assert.rejects(viewer(base, `${created.id}/nothing`), /404/);
    await assert.rejects(viewer(base, "%E0%A4%A"), /404/);
    assert.equal((await call(base, "DELETE", `/api/vms/${created.id}`)).status, 200);
    assert.deepEqual(JSON.parse((await call(base, "GET", "/api/vms")).body), { vms: [] });
    assert.equal(server.openSockets(), 0);
  });
});

test("a VM with a drive: Ctrl+Alt+Del, swapping the drive's image (only to an allowed file); a VM that fails to start stays listed with the reason", { skip }, async () => {
  const kernel = await buildTestGuest("echo");
  const images = mkdtempSync(path.join(tmpdir(), "petasan-console-images-"));
  try {
    writeFileSync(path.join(images, "a.img"), Buffer.alloc(1024 * 1024));
    writeFileSync(path.join(images, "b.img"), Buffer.alloc(1024 * 1024));
    writeFileSync(path.join(images, "not-a-kernel"), "hello");
    await withServer([path.dirname(kernel), images], async (_server, base) => {
      const config = {
        "boot-source": { kernel_image_path: kernel },
        "machine-config": { vcpu_count: 1, mem_size_mib: 64 },
        drives: [{ drive_id: "data", path_on_host: path.join(images, "a.img"), is_root_device: false, is_read_only: false }],
      };
      // As the page's JSON mode sends it: the config as text.
      const created = await call(base, "POST", "/api/vms", json({ config: JSON.stringify(config) }));
      assert.equal(created.status, 201, created.body);
      const id = (JSON.parse(created.body) as { id: string }).id;
      assert.equal((await call(base, "POST", `/api/vms/${id}/ctrl-alt-del`, json({}))).status, 200);
      const swapped = await call(base, "PUT", `/api/vms/${id}/drives/data`, json({ path: path.join(images, "b.img") }));
      assert.equal(swapped.status, 200, swapped.body);
      const outside = await call(base, "PUT", `/api/vms/${id}/drives/data`, json({ path: "/etc/passwd" }));
      assert.equal(outside.status, 400);
      assert.match(errorOf(outside), /drives\[data\]\.path_on_host: \/etc\/passwd is outside/);
      const missing = await call(base, "PUT", `/api/vms/${id}/drives/data`, json({ path: path.join(images, "nope.img") }));
      assert.equal(missing.status, 400);
      assert.match(errorOf(missing), /swapping drive data: .*nope\.img/);
      assert.equal((await call(base, "POST", `/api/vms/${id}/stop`, json({}))).status, 200);

      const bad = await call(base, "POST", "/api/vms", json({ name: "broken", config: { "boot-source": { kernel_image_path: path.join(images, "not-a-kernel") } } }));
      assert.equal(bad.status, 400);
      const listed = (JSON.parse((await call(base, "GET", "/api/vms")).body) as { vms: { name: string; state: string; exit?: { reason: string; message: string } }[] }).vms;
      const broken = listed.find((vm) => vm.name === "broken")!;
      assert.equal(broken.state, "Stopped");
      assert.equal(broken.exit?.reason, "internal-error");
      assert.match(broken.exit!.message, /not-a-kernel/);
    });
  } finally {
    rmSync(images, { recursive: true, force: true });
  }
});

test("snapshot a running echo guest and restore it as a second VM whose console echoes; bad paths, files and states are one-line errors", { skip, timeout: 120_000 }, async () => {
  const kernel = await buildTestGuest("echo");
  const dir = mkdtempSync(path.join(tmpdir(), "petasan-console-snapshots-"));
  const file = (name: string) => path.join(dir, name);
  try {
    writeFileSync(file("junk.snap"), "not a snapshot ".repeat(10));
    writeFileSync(file("short.mem"), Buffer.alloc(4096));
    await withServer([path.dirname(kernel), dir], async (server, base) => {
      const config = { "boot-source": { kernel_image_path: kernel }, "machine-config": { vcpu_count: 1, mem_size_mib: 64 } };
      const created = await call(base, "POST", "/api/vms", json({ name: "echo", config }));
      assert.equal(created.status, 201, created.body);
      const id = (JSON.parse(created.body) as { id: string }).id;
      const original = await viewer(base, id);
      await original.waitFor("echo: ready");
      original.ws.send("before ");
      await original.waitFor("BEFORE ");

      // A running VM: paused for the snapshot, running again after it.
      const target = { snapshotPath: file("echo.snap"), memFilePath: file("echo.mem") };
      const saved = await call(base, "POST", `/api/vms/${id}/snapshot`, json(target));
      assert.equal(saved.status, 200, saved.body);
      const summary = JSON.parse(saved.body) as { state: string; lastSnapshot: { snapshotPath: string; type: string } };
      assert.equal(summary.state, "Running");
      assert.deepEqual([summary.lastSnapshot.snapshotPath, summary.lastSnapshot.type], [target.snapshotPath, "Full"]);
      assert.ok(existsSync(target.snapshotPath) && existsSync(target.memFilePath));
      const logs = (JSON.parse((await call(base, "GET", `/api/vms/${id}`)).body) as { logs: string[] }).logs;
      assert.ok(logs.length > 0);
      original.ws.send("still running ");
      await original.waitFor("STILL RUNNING ");

      // The snapshot's files are there now: replacing them needs "overwrite"; a paused VM stays paused.
      const again = await call(base, "POST", `/api/vms/${id}/snapshot`, json(target));
      assert.equal(again.status, 400);
      assert.match(errorOf(again), /snapshotPath: .*echo\.snap exists; ask to overwrite it/);
      assert.equal((await call(base, "POST", `/api/vms/${id}/pause`, json({}))).status, 200);
      const overwritten = await call(base, "POST", `/api/vms/${id}/snapshot`, json({ ...target, overwrite: true }));
      assert.equal(overwritten.status, 200, overwritten.body);
      assert.equal(JSON.parse(overwritten.body).state, "Paused");

      // Restored as a second VM: the guest goes on from the snapshot, with its own console.
      const restored = await call(base, "POST", "/api/vms", json({ name: "clone", snapshot: { ...target, trackDirtyPages: true } }));
      assert.equal(restored.status, 201, restored.body);
      const clone = JSON.parse(restored.body) as { id: string; name: string; state: string; vcpus: number; memMib: number; restoredFrom: unknown; trackDirtyPages: boolean };
      assert.deepEqual([clone.name, clone.state, clone.vcpus, clone.memMib, clone.trackDirtyPages], ["clone", "Running", 1, 64, true]);
      assert.deepEqual(clone.restoredFrom, target);
      const cloneViewer = await viewer(base, clone.id);
      cloneViewer.ws.send("hello clone");
      await cloneViewer.waitFor("HELLO CLONE");
      assert.equal(original.text().includes("HELLO CLONE"), false, "the original's console is its own");
      assert.equal((await call(base, "POST", `/api/vms/${id}/resume`, json({}))).status, 200);
      original.ws.send("original again");
      await original.waitFor("ORIGINAL AGAIN");
      assert.equal(cloneViewer.text().includes("ORIGINAL AGAIN"), false);
      const listed = (JSON.parse((await call(base, "GET", "/api/vms")).body) as { vms: { id: string; state: string }[] }).vms;
      assert.deepEqual(listed.map((vm) => [vm.id, vm.state]), [[id, "Running"], [clone.id, "Running"]]);

      // Diff snapshots: of the clone, which tracks dirty pages; not of the original, which does not.
      const diff = await call(base, "POST", `/api/vms/${clone.id}/snapshot`, json({ snapshotPath: file("clone.snap"), memFilePath: file("clone-diff.mem"), type: "Diff" }));
      assert.equal(diff.status, 200, diff.body);
      const noTracking = await call(base, "POST", `/api/vms/${id}/snapshot`, json({ snapshotPath: file("d.snap"), memFilePath: file("d.mem"), type: "Diff" }));
      assert.equal(noTracking.status, 400);
      assert.match(errorOf(noTracking), /^snapshot: Diff snapshots need dirty page tracking/);
      assert.equal(JSON.parse((await call(base, "GET", `/api/vms/${id}`)).body).state, "Running", "resumed after a refused snapshot");

      // Two snapshots at once: the second is refused while the first is written.
      const both = await Promise.all([
        call(base, "POST", `/api/vms/${id}/snapshot`, json({ snapshotPath: file("a.snap"), memFilePath: file("a.mem") })),
        call(base, "POST", `/api/vms/${id}/snapshot`, json({ snapshotPath: file("b.snap"), memFilePath: file("b.mem") })),
      ]);
      assert.deepEqual(both.map((r) => r.status).sort(), [200, 409], both.map((r) => r.body).join("\n"));
      assert.match(errorOf(both.find((r) => r.status === 409)!), /is writing a snapshot; try again/);

      const bad: [string, string, unknown, number, RegExp][] = [
        ["outside --allow", `/api/vms/${id}/snapshot`, { snapshotPath: "/etc/x.snap", memFilePath: file("x.mem") }, 400, /^snapshotPath: \/etc\/x\.snap is outside the paths/],
        ["relative path", `/api/vms/${id}/snapshot`, { snapshotPath: "x.snap", memFilePath: file("x.mem") }, 400, /is not an absolute path/],
        ["same file twice", `/api/vms/${id}/snapshot`, { snapshotPath: file("x"), memFilePath: file("x") }, 400, /are the same file/],
        ["a file a VM uses", `/api/vms/${id}/snapshot`, { snapshotPath: file("x.snap"), memFilePath: kernel, overwrite: true }, 400, new RegExp(`memFilePath: .* is the kernel of VM ${id}`)],
        ["no paths", `/api/vms/${id}/snapshot`, {}, 400, /^snapshotPath: expected where to write/],
        ["unknown type", `/api/vms/${id}/snapshot`, { ...target, type: "Incremental" }, 400, /type: expected "Full" or "Diff"/],
        ["unknown field", `/api/vms/${id}/snapshot`, { ...target, snapshot_type: "Full" }, 400, /unknown field "snapshot_type"/],
        ["config and snapshot", "/api/vms", { config, snapshot: target }, 400, /not both/],
        ["snapshot not an object", "/api/vms", { snapshot: "echo.snap" }, 400, /snapshot: expected/],
        ["restore outside --allow", "/api/vms", { snapshot: { snapshotPath: "/etc/passwd", memFilePath: target.memFilePath } }, 400, /^snapshot\.snapshotPath: \/etc\/passwd is outside/],
        ["network overrides", "/api/vms", { snapshot: { ...target, networkOverrides: [] } }, 400, /unknown field "networkOverrides"/],
        ["not a snapshot file", "/api/vms", { snapshot: { snapshotPath: file("junk.snap"), memFilePath: target.memFilePath } }, 400, /junk\.snap is not a petasan snapshot file/],
        ["no such snapshot file", "/api/vms", { snapshot: { snapshotPath: file("none.snap"), memFilePath: target.memFilePath } }, 400, /cannot read snapshot file .*none\.snap: ENOENT/],
      ];
      for (const [what, urlPath, body, status, message] of bad) {
        const r = await call(base, "POST", urlPath, json(body));
        assert.equal(r.status, status, `${what}: ${r.body}`);
        assert.match(errorOf(r), message, what);
      }
      assert.equal(server.registry.list().length, 2, "no VM was listed by a refused request");
      assert.ok(!existsSync(file("x.snap")) && !existsSync(file("x.mem")));

      // A memory file of the wrong size is found as the VM starts: listed Stopped with the reason, as a failed boot is.
      const short = await call(base, "POST", "/api/vms", json({ name: "short", snapshot: { snapshotPath: target.snapshotPath, memFilePath: file("short.mem") } }));
      assert.equal(short.status, 400);
      assert.match(errorOf(short), /memory file .*short\.mem is 4096 bytes/);
      const failed = (JSON.parse((await call(base, "GET", "/api/vms")).body) as { vms: { name: string; state: string; exit?: { message: string } }[] }).vms.find((vm) => vm.name === "short")!;
      assert.equal(failed.state, "Stopped");
      assert.match(failed.exit!.message, /short\.mem/);

      // Restored paused, then started by resume.
      const paused = await call(base, "POST", "/api/vms", json({ snapshot: { ...target, resume: false } }));
      assert.equal(paused.status, 201, paused.body);
      const pausedId = (JSON.parse(paused.body) as { id: string; state: string }).id;
      assert.equal(JSON.parse(paused.body).state, "Paused");
      const pausedViewer = await viewer(base, pausedId);
      assert.equal((await call(base, "POST", `/api/vms/${pausedId}/resume`, json({}))).status, 200);
      pausedViewer.ws.send("woke");
      await pausedViewer.waitFor("WOKE");

      // Snapshots the library refuses are refused with its reason (a Diff without dirty page tracking); the VM runs on.
      const plain = JSON.parse((await call(base, "POST", "/api/vms", json({ config }))).body) as { id: string };
      const refused = await call(base, "POST", `/api/vms/${plain.id}/snapshot`, json({ snapshotPath: file("v.snap"), memFilePath: file("v.mem"), type: "Diff" }));
      assert.equal(refused.status, 400);
      assert.match(errorOf(refused), /^snapshot: Diff snapshots need dirty page tracking/);
      assert.equal(JSON.parse((await call(base, "GET", `/api/vms/${plain.id}`)).body).state, "Running");
      for (const v of [original, cloneViewer, pausedViewer]) v.ws.close();

      // Stop while a snapshot is being written: the stop waits for it, so the files are whole or never made.
      const [during, stopped] = await Promise.all([
        call(base, "POST", `/api/vms/${clone.id}/snapshot`, json({ snapshotPath: file("s.snap"), memFilePath: file("s.mem") })),
        call(base, "POST", `/api/vms/${clone.id}/stop`, json({})),
      ]);
      assert.equal(stopped.status, 200, stopped.body);
      assert.equal(JSON.parse(stopped.body).state, "Stopped");
      if (during.status === 200) {
        const check = await call(base, "POST", "/api/vms", json({ snapshot: { snapshotPath: file("s.snap"), memFilePath: file("s.mem") }, start: false }));
        assert.equal(check.status, 201, `the snapshot taken as the VM stopped loads: ${check.body}`);
      } else {
        assert.equal(during.status, 409, during.body);
        assert.ok(!existsSync(file("s.snap")));
      }
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a listener beyond loopback refuses every request without its token, from any address", { timeout: 60_000 }, async () => {
  const petasan = startPetasan(["console", "--listen", "0.0.0.0:0"], 60_000);
  try {
    await petasan.waitFor(/every request needs the token (\S+)\n/);
    const out = petasan.stdout();
    const token = /every request needs the token (\S+)\n/.exec(out)![1];
    const url = /petasan console: (http:\S+)\n/.exec(out)![1];
    assert.ok(url.endsWith(`?token=${token}`), out);
    const base = new URL("/", url).href; // http://127.0.0.1:PORT/: a loopback client, refused all the same

    for (const [method, p] of [["GET", "/"], ["GET", "/app.js"], ["GET", "/api/vms"], ["POST", "/api/vms"]] as const) {
      const r = await call(base, method, p, json({}));
      assert.equal(r.status, 401, `${method} ${p}: ${r.body}`);
      assert.match(errorOf(r), /needs its token/);
    }
    assert.equal((await call(base, "GET", "/api/vms", { headers: { Authorization: "Bearer not-the-token" } })).status, 401);
    await assert.rejects(viewer(base, "vm1"), /401/);
    const events = new WebSocket(new URL("/api/events", base.replace(/^http/, "ws")));
    events.on("error", () => {});
    assert.equal(await new Promise((resolve) => events.once("unexpected-response", (req, res) => (req.destroy(), resolve(res.statusCode)))), 401);

    // With the token: as a header, or the printed URL, which sets the cookie the page's own requests carry.
    assert.equal((await call(base, "GET", "/api/vms", { headers: { Authorization: `Bearer ${token}` } })).status, 200);
    const page = await call(url, "GET", `/?token=${token}`);
    assert.equal(page.status, 200);
    const cookie = String(page.headers["set-cookie"]).split(";")[0];
    assert.equal((await call(base, "GET", "/api/vms", { headers: { Cookie: cookie } })).status, 200);
    const ok = new WebSocket(new URL("/api/events", base.replace(/^http/, "ws")), { headers: { Cookie: cookie } });
    const hello = await new Promise<string>((resolve, reject) => {
      ok.once("message", (d: Buffer) => resolve(d.toString()));
      ok.once("error", reject);
    });
    assert.equal(JSON.parse(hello).type, "hello");
    ok.close();
  } finally {
    petasan.child.kill("SIGTERM");
    assert.equal((await petasan.finished).code, 0);
  }
});

test("petasan console: a bad --listen or --allow is one line and exit code 2 or 1", async () => {
  const bad = startPetasan(["console", "--listen", "example.com:80"], 20_000);
  const end = await bad.finished;
  assert.equal(end.code, 2);
  assert.match(end.stderr, /--listen example\.com:80: example\.com is not an IP address/);
  const missing = startPetasan(["console", "--allow", "/nonexistent/dir"], 20_000);
  const end2 = await missing.finished;
  assert.equal(end2.code, 1);
  assert.match(end2.stderr, /^petasan console: --allow \/nonexistent\/dir: ENOENT\n$/);
});
