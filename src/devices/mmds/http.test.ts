import { test } from "node:test";
import assert from "node:assert/strict";
import { MmdsMetadata } from "./metadata.js";
import { newMmdsMetrics } from "./metrics.js";
import { NO_TOKEN_PROVIDED, NO_TTL_PROVIDED, INVALID_TOKEN, parseRequestHead, respond, serializeResponse, type HttpRequest, type HttpResponse } from "./http.js";
import { TokenAuthority } from "./token.js";

function context(version: "V1" | "V2", imdsCompat = false) {
  const metadata = new MmdsMetadata(version, imdsCompat);
  metadata.setDataText(JSON.stringify({ latest: { "meta-data": { "ami-id": "ami-1", zone: "z" } }, age: 43, name: { first: "J" }, list: [1, 2] }));
  let clock = 1000;
  const tokens = new TokenAuthority(() => clock);
  return { ctx: { metadata, tokens, metrics: newMmdsMetrics() }, advance: (ms: number) => (clock += ms) };
}

function ask(ctx: Parameters<typeof respond>[0], head: string): HttpResponse {
  const req = parseRequestHead(head);
  return "path" in req ? respond(ctx, req as HttpRequest) : req;
}

test("V1 answers GETs without a token, in IMDS form unless JSON is asked for", () => {
  const { ctx } = context("V1");
  assert.deepEqual(ask(ctx, "GET / HTTP/1.1\r\n\r\n"), { status: 200, contentType: "text/plain", body: "age\nlatest/\nlist\nname/" });
  assert.equal(ask(ctx, "GET /latest/meta-data/ami-id HTTP/1.1\r\n\r\n").body, "ami-1");
  assert.equal(ask(ctx, "GET http://169.254.169.254/latest//meta-data/ HTTP/1.1\r\n\r\n").body, "ami-id\nzone");
  const json = ask(ctx, "GET /latest HTTP/1.1\r\nAccept: application/json\r\n\r\n");
  assert.deepEqual(json, { status: 200, contentType: "application/json", body: '{"meta-data":{"ami-id":"ami-1","zone":"z"}}' });
  assert.equal(ctx.metrics.rx_no_token, 4);
  const age = ask(ctx, "GET /age HTTP/1.1\r\n\r\n");
  assert.deepEqual([age.status, age.body], [501, "Cannot retrieve value. The value has an unsupported type."]);
  const missing = ask(ctx, "GET /nope HTTP/1.1\r\n\r\n");
  assert.deepEqual([missing.status, missing.body], [404, "Resource not found: /nope."]);
});

test("imds_compat answers plain text whatever the Accept header", () => {
  const { ctx } = context("V1", true);
  const r = ask(ctx, "GET /name HTTP/1.1\r\nAccept: application/json\r\n\r\n");
  assert.deepEqual(r, { status: 200, contentType: "text/plain", body: "first" });
});

test("V2: a token from PUT /latest/api/token opens GETs until it expires", () => {
  const { ctx, advance } = context("V2");
  const none = ask(ctx, "GET /age HTTP/1.1\r\n\r\n");
  assert.deepEqual([none.status, none.body], [401, NO_TOKEN_PROVIDED]);
  const bad = ask(ctx, "GET / HTTP/1.1\r\nX-metadata-token: foo\r\n\r\n");
  assert.deepEqual([bad.status, bad.body], [401, INVALID_TOKEN]);
  assert.equal(ctx.metrics.rx_invalid_token, 1);
  const put = ask(ctx, "PUT /latest/api/token HTTP/1.1\r\nX-aws-ec2-metadata-token-ttl-seconds: 2\r\n\r\n");
  assert.equal(put.status, 200);
  assert.deepEqual(put.headers, ["X-aws-ec2-metadata-token-ttl-seconds: 2"]);
  const token = put.body;
  assert.match(token, /^[A-Za-z0-9+/]{48}$/);
  const ok = ask(ctx, `GET /latest/meta-data/zone HTTP/1.1\r\nx-aws-ec2-metadata-token: ${token}\r\n\r\n`);
  assert.deepEqual([ok.status, ok.body], [200, "z"]);
  // A token from another VM's authority (another key) is refused.
  const other = context("V2").ctx;
  assert.equal(ask(other, `GET / HTTP/1.1\r\nX-metadata-token: ${token}\r\n\r\n`).status, 401);
  // A bit flipped in the sealed expiry is refused.
  const raw = Buffer.from(token, "base64");
  raw[14] ^= 1;
  assert.equal(ask(ctx, `GET / HTTP/1.1\r\nX-metadata-token: ${raw.toString("base64")}\r\n\r\n`).status, 401);
  advance(2001);
  assert.equal(ask(ctx, `GET / HTTP/1.1\r\nX-metadata-token: ${token}\r\n\r\n`).body, INVALID_TOKEN);
});

test("PUT errors carry Firecracker's messages", () => {
  const { ctx } = context("V2");
  assert.equal(ask(ctx, "PUT /latest/api/token HTTP/1.1\r\n\r\n").body, NO_TTL_PROVIDED);
  assert.equal(ask(ctx, "PUT /latest/api/toke HTTP/1.1\r\nX-metadata-token-ttl-seconds: 60\r\n\r\n").body, "Resource not found: /latest/api/toke.");
  for (const ttl of [0, 21601]) {
    assert.equal(
      ask(ctx, `PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: ${ttl}\r\n\r\n`).body,
      `Invalid time to live value provided for token: ${ttl}. Please provide a value between 1 and 21600.`,
    );
  }
  assert.equal(ask(ctx, "PUT / HTTP/1.1\r\nX-Forwarded-For: foo\r\n\r\n").body, "Invalid header. Reason: Unsupported header name. Key: X-Forwarded-For");
  const patch = ask(ctx, "PATCH / HTTP/1.1\r\n\r\n");
  assert.deepEqual([patch.status, patch.headers], [405, ["Allow: GET, PUT"]]);
  const body = ask(ctx, "GET / HTTP/1.1\r\nContent-Length: 100\r\n\r\n");
  assert.deepEqual([body.status, body.body, body.close], [400, "Invalid request.", true]);
});

test("responses look like micro_http's; HTTP/1.0 and Connection: close end the connection", () => {
  const { ctx } = context("V1");
  const r = ask(ctx, "GET /name/first HTTP/1.0\r\n\r\n");
  assert.equal(r.close, true);
  assert.equal(
    Buffer.from(serializeResponse("HTTP/1.0", r)).toString(),
    "HTTP/1.0 200 \r\nServer: petasan\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\nJ",
  );
  assert.equal(ask(ctx, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n").close, true);
  assert.equal(ask(ctx, "GET / HTTP/1.1\r\n\r\n").close, undefined);
});
