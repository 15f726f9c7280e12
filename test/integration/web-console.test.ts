/**
 * `petasan console`'s server without a browser: its API and WebSockets on a real echo-guest VM. Several
 * viewers of one console, a viewer joining late, viewers vanishing mid-stream (nothing leaks), clear errors
 * for bad requests, the allowed paths, and the token a non-loopback listener demands of every request.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
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
      ["snapshot", "", 501, /does not support snapshots yet/],
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
