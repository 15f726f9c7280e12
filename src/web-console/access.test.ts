import { test } from "node:test";
import assert from "node:assert/strict";
import type { IncomingMessage } from "node:http";
import { AccessPolicy, hostName, TOKEN_COOKIE } from "./access.js";

function request(headers: Record<string, string>): IncomingMessage {
  return { headers } as unknown as IncomingMessage;
}
const url = (path: string) => new URL(path, "http://x");

test("loopback listener: no token; only loopback Host names; cross-site writes refused", () => {
  const policy = new AccessPolicy({ loopback: true, display: "127.0.0.1:8080" });
  assert.equal(policy.token, undefined);
  assert.equal(policy.check(request({ host: "127.0.0.1:8080" }), url("/api/vms"), false), undefined);
  assert.equal(policy.check(request({ host: "localhost:8080", origin: "http://localhost:8080" }), url("/api/vms"), true), undefined);
  assert.equal(policy.check(request({ host: "evil.example:8080" }), url("/"), false)?.status, 403);
  assert.equal(policy.check(request({ host: "127.0.0.1:8080", origin: "http://evil.example" }), url("/api/vms"), true)?.status, 403);
  // Reading is allowed from anywhere a browser would let it: the same-origin policy hides the answer.
  assert.equal(policy.check(request({ host: "127.0.0.1:8080", origin: "http://evil.example" }), url("/api/vms"), false), undefined);
});

test("non-loopback listener: every request needs the token, in a header, the query or the cookie", () => {
  const policy = new AccessPolicy({ loopback: false, display: "0.0.0.0:8080" });
  const token = policy.token!;
  assert.match(token, /^[A-Za-z0-9_-]{32}$/);
  const host = { host: "127.0.0.1:8080" };
  const refused = policy.check(request(host), url("/"), false);
  assert.equal(refused?.status, 401);
  assert.match(refused!.message, /0\.0\.0\.0:8080 .* needs its token/);
  assert.equal(policy.check(request({ ...host, authorization: "Bearer wrong" }), url("/"), false)?.status, 401);
  assert.equal(policy.check(request({ ...host, authorization: `Bearer ${token}` }), url("/"), false), undefined);
  assert.equal(policy.check(request(host), url(`/?token=${token}`), false), undefined);
  assert.equal(policy.check(request({ ...host, cookie: `a=b; ${TOKEN_COOKIE}=${token}` }), url("/api/vms"), true), undefined);
  assert.equal(policy.check(request({ ...host, cookie: `${TOKEN_COOKIE}=${token}x` }), url("/api/vms"), true)?.status, 401);
  // Any Host name, since the token is the check; but still not from another site's page.
  assert.equal(policy.check(request({ host: "vmhost.example:8080", authorization: `Bearer ${token}` }), url("/"), false), undefined);
  assert.equal(policy.check(request({ host: "vmhost.example:8080", origin: "http://evil.example", cookie: `${TOKEN_COOKIE}=${token}` }), url("/api/vms"), true)?.status, 403);
  assert.ok(policy.tokenInQuery(url(`/?token=${token}`)));
  assert.match(policy.cookie(), /HttpOnly; SameSite=Strict/);
});

test("Host header names", () => {
  assert.equal(hostName("127.0.0.1:8080"), "127.0.0.1");
  assert.equal(hostName("[::1]:8080"), "::1");
  assert.equal(hostName("LocalHost"), "localhost");
});
