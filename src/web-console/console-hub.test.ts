import { test } from "node:test";
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { CLOSE_TOO_SLOW, CLOSE_VM_ENDED, ConsoleHub, MAX_VIEWER_BACKLOG, SCROLLBACK_BYTES, type Viewer } from "./console-hub.js";

class FakeViewer implements Viewer {
  bufferedAmount = 0;
  received = "";
  closed?: number;
  send(data: Buffer): void {
    this.received += data.toString();
  }
  close(code: number): void {
    this.closed = code;
  }
}

const tick = () => new Promise((r) => setImmediate(r));

test("every viewer sees the output; a late one gets the scrollback first; input reaches the console", async () => {
  const stream = new PassThrough();
  const hub = new ConsoleHub(stream);
  const a = new FakeViewer();
  hub.add(a);
  stream.write("echo: ready\n");
  await tick();
  const b = new FakeViewer();
  hub.add(b);
  assert.equal(hub.viewerCount, 2);
  stream.write("HI");
  await tick();
  assert.equal(a.received, "echo: ready\nHI");
  assert.equal(b.received, "echo: ready\nHI");
  hub.remove(a);
  assert.equal(hub.viewerCount, 1);
  // A PassThrough hands input straight back as output: what the viewers see is what the console got.
  hub.input(Buffer.from("x"));
  await tick();
  assert.equal(b.received, "echo: ready\nHIx");
});

test("the scrollback keeps the last SCROLLBACK_BYTES", async () => {
  const stream = new PassThrough();
  const hub = new ConsoleHub(stream);
  stream.write(Buffer.alloc(SCROLLBACK_BYTES, "a"));
  stream.write(Buffer.from("tail"));
  await tick();
  const text = hub.scrollback();
  assert.equal(text.length, SCROLLBACK_BYTES);
  assert.ok(text.endsWith("atail"));
});

test("a viewer that stops draining is closed, not buffered without bound; the end closes the rest", async () => {
  const stream = new PassThrough();
  const hub = new ConsoleHub(stream);
  const slow = new FakeViewer();
  const fine = new FakeViewer();
  hub.add(slow);
  hub.add(fine);
  slow.bufferedAmount = MAX_VIEWER_BACKLOG + 1;
  stream.write("more");
  await tick();
  assert.equal(slow.closed, CLOSE_TOO_SLOW);
  assert.equal(hub.viewerCount, 1);
  stream.end();
  await tick();
  assert.equal(fine.closed, CLOSE_VM_ENDED);
  assert.equal(hub.viewerCount, 0);
  const late = new FakeViewer();
  hub.add(late);
  assert.equal(late.received, "more");
  assert.equal(late.closed, CLOSE_VM_ENDED);
  assert.equal(hub.viewerCount, 0);
});
