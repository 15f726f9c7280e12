import { test } from "node:test";
import assert from "node:assert/strict";
import { PortSink } from "./sink.js";

test("a port sink reads as an undriven ISA bus and counts writes", () => {
  const sink = new PortSink();
  const data = new Uint8Array(4);
  sink.read(0, data);
  assert.deepEqual([...data], [0xff, 0xff, 0xff, 0xff]);
  sink.write();
  sink.write();
  assert.equal(sink.writes, 2);
});
