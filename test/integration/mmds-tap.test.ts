/**
 * MMDS against a real Linux TCP/IP stack: this host's kernel, in a network namespace the test makes, talks HTTP to
 * 169.254.169.254 through a tap whose other end is petasan's MMDS network stack (mmds-tap-peer.ts). The kernel
 * resolves the address with ARP, opens TCP connections and reads a 20 KB answer sent within its window and MSS;
 * both checksums of every frame MMDS makes are checked by the kernel, which drops a frame with a wrong one.
 * Only the namespace's own addresses are used; nothing leaves it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { requireTool } from "../setup/host-tools.js";

const PEER = fileURLToPath(new URL("./mmds-tap-peer.js", import.meta.url));
const skip = process.getuid?.() !== 0 ? "needs root for a network namespace and a tap" : false;
if (skip) process.stderr.write(`# SKIPPED mmds-tap.test: ${skip}\n`);

test("the host kernel gets a V2 token and values from MMDS over a tap, and V1 values without one", { skip, timeout: 60_000 }, () => {
  const ip = requireTool("ip");
  const ns = `petasan-mmds-${process.pid}`;
  const inNs = (...args: string[]) => execFileSync(ip, ["netns", "exec", ns, ...args], { encoding: "utf8", timeout: 30_000 });
  execFileSync(ip, ["netns", "add", ns]);
  try {
    inNs("ip", "link", "set", "lo", "up");
    inNs("ip", "tuntap", "add", "dev", "mtap0", "mode", "tap", "vnet_hdr");
    // TEST-NET-1 (RFC 5737) inside the namespace only; MMDS is reached by ARP on the tap, as a guest with a route does.
    inNs("ip", "addr", "add", "192.0.2.2/24", "dev", "mtap0");
    inNs("ip", "link", "set", "mtap0", "up");
    inNs("ip", "route", "add", "169.254.169.254", "dev", "mtap0");
    const data = { latest: { "meta-data": { "ami-id": "ami-12345678" }, "user-data": "x" }, big: "y".repeat(20000) };
    const out = JSON.parse(inNs(process.execPath, PEER, "mtap0", JSON.stringify(data)));
    assert.equal(out.token.status, 200);
    assert.match(out.token.body, /^[A-Za-z0-9+/]{48}$/);
    assert.equal(out.token.headers["x-metadata-token-ttl-seconds"], "60");
    assert.deepEqual([out.value.status, out.value.body], [200, "ami-12345678"]);
    assert.equal(out.value.headers["content-type"], "text/plain");
    assert.deepEqual([out.bigLength, out.bigOk], [20002, true]);
    assert.deepEqual([out.listing.status, out.listing.body], [200, "meta-data/\nuser-data"]);
    assert.equal(out.noToken.status, 401);
    assert.match(out.noToken.body, /^No MMDS token provided/);
    assert.equal(out.metrics.connections_created, 5);
    assert.equal(out.open, 0, "every connection closed");
    assert.equal(out.metrics.rx_no_token, 1);

    const v1 = JSON.parse(inNs(process.execPath, PEER, "mtap0", JSON.stringify(data), "V1"));
    assert.deepEqual([v1.value.status, v1.value.body], [200, "ami-12345678"]);
    assert.equal(v1.open, 0, "the connection closed");
  } finally {
    execFileSync(ip, ["netns", "del", ns]);
  }
});
