import { test } from "node:test";
import assert from "node:assert/strict";
import { isLoopback, parseListenAddress } from "./listen-address.js";

test("--listen: host and port, loopback or not", () => {
  assert.deepEqual(parseListenAddress("127.0.0.1:8080"), { host: "127.0.0.1", port: 8080, loopback: true });
  assert.deepEqual(parseListenAddress("[::1]:0"), { host: "::1", port: 0, loopback: true });
  assert.deepEqual(parseListenAddress("localhost:9"), { host: "localhost", port: 9, loopback: true });
  assert.deepEqual(parseListenAddress("0.0.0.0:8080"), { host: "0.0.0.0", port: 8080, loopback: false });
  assert.deepEqual(parseListenAddress("[::]:8080"), { host: "::", port: 8080, loopback: false });
  assert.equal(parseListenAddress("192.0.2.7:80").loopback, false);
});

test("--listen: a bad address is one clear line", () => {
  for (const bad of ["8080", "127.0.0.1", "127.0.0.1:99999", "::1:8080", "example.com:80", "[127.0.0.1]:80", ":80", "1.2.3:80"]) {
    assert.throws(() => parseListenAddress(bad), /^ListenAddressError: --listen .*/m, bad);
  }
});

test("loopback: 127/8, ::1 and its mapped form; not the wildcard addresses", () => {
  assert.ok(isLoopback("127.4.5.6"));
  assert.ok(isLoopback("::ffff:127.0.0.1"));
  assert.equal(isLoopback("0.0.0.0"), false);
  assert.equal(isLoopback("::"), false);
  assert.equal(isLoopback("10.0.0.1"), false);
});
