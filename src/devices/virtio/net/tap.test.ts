import { test } from "node:test";
import assert from "node:assert/strict";
import { GuestMemory } from "../../../memory/guest-memory.js";
import { NetIoError } from "./net-backend.js";
import { openTap } from "./tap.js";

test("openTap makes a non-blocking vnet-header tap and probes its offloads", (t) => {
  let tap;
  try {
    tap = openTap(`ptsn${process.pid % 100000}`);
  } catch (err) {
    assert.ok(err instanceof NetIoError);
    t.skip(`no tap here: ${(err.cause as Error | undefined)?.message ?? err.message}`);
    return;
  }
  t.after(() => tap.close());
  assert.ok(tap.fd >= 0);
  assert.deepEqual(tap.supportedOffloads, { csum: true, tso4: true, tso6: true });
  tap.setOffloads({ csum: true, tso4: true, tso6: false });
  // Nothing has arrived on a fresh tap: receive reports that instead of blocking. Buffers in a
  // plain ArrayBuffer have fake host addresses, but readv returns EAGAIN before touching them.
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: 0x1000 }]);
  assert.equal(tap.receive(mem, [{ addr: 0, len: 0x1000 }]), null);
});

test("openTap refuses names the kernel cannot take", () => {
  assert.throws(() => openTap("a-name-that-is-far-too-long"), NetIoError);
  assert.throws(() => openTap(""), NetIoError);
});
