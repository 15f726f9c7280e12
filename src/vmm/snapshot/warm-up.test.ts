import assert from "node:assert/strict";
import { test } from "node:test";
import { warmUpSnapshotLoading } from "./warm-up.js";

test("the warm-up's sample state file goes through every check a real one does (else it would warm up nothing)", () => {
  assert.equal(warmUpSnapshotLoading(), true);
});
