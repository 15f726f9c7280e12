import { test } from "node:test";
import assert from "node:assert/strict";
import { warmUpDeviceThread } from "./warm-up.js";

// jobData() swallows a warm-up's errors (it is only a warm-up): a broken one would silently warm nothing.
test("the device thread's warm-up runs through: devices made, accessed, saved and restored", () => {
  assert.doesNotThrow(warmUpDeviceThread);
});
