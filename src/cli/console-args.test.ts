import { test } from "node:test";
import assert from "node:assert/strict";
import { parseConsoleArgs } from "./console-args.js";
import { UsageError } from "./run-args.js";

test("petasan console: defaults to loopback port 8080, no folder, no network", () => {
  assert.deepEqual(parseConsoleArgs([]), { listen: { host: "127.0.0.1", port: 8080, loopback: true }, allow: [], allowNet: false });
});

test("petasan console: --listen, repeated --allow, --allow-net", () => {
  const args = parseConsoleArgs(["--listen", "0.0.0.0:9000", "--allow", "/a", "--allow", "/b", "--allow-net"]);
  assert.deepEqual(args, { listen: { host: "0.0.0.0", port: 9000, loopback: false }, allow: ["/a", "/b"], allowNet: true });
});

test("petasan console: unknown flags and bad addresses are usage errors", () => {
  assert.throws(() => parseConsoleArgs(["--port", "80"]), UsageError);
  assert.throws(() => parseConsoleArgs(["--listen", "nowhere"]), (e: unknown) => e instanceof UsageError && /expected HOST:PORT/.test(e.message));
  assert.throws(() => parseConsoleArgs(["stray"]), UsageError);
});
