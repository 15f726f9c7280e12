import { test } from "node:test";
import assert from "node:assert/strict";
import { claimPollingCores } from "./polling-cores.js";

test("VMs in one process share the cores: a second VM polls only if its threads fit beside the first's", () => {
  const first = claimPollingCores(2, 4);
  assert.equal(first.poll, true);
  const second = claimPollingCores(3, 4);
  assert.equal(second.poll, false, "2 + 3 threads on 4 cores");
  const third = claimPollingCores(2, 4);
  assert.equal(third.poll, true);
  first.release();
  first.release();
  assert.equal(claimPollingCores(3, 4).poll, false, "a double release gives back nothing twice");
  third.release();
  const fourth = claimPollingCores(4, 4);
  assert.equal(fourth.poll, true);
  fourth.release();
});
