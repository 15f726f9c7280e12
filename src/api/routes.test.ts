import assert from "node:assert/strict";
import { test } from "node:test";
import { ActionError } from "./errors.js";
import { parseRequest } from "./routes.js";

const drive = JSON.stringify({ drive_id: "rootfs", path_on_host: "/r", is_root_device: true });

test("query strings, trailing slashes and absolute-form URLs reach the same route", () => {
  for (const url of ["/drives/rootfs", "/drives/rootfs/", "/drives/rootfs?x=1", "http://localhost/drives/rootfs"]) {
    assert.equal(parseRequest("PUT", url, drive).kind, "putDrive", url);
  }
  assert.equal(parseRequest("GET", "http://localhost", undefined).kind, "getInstanceInfo");
  assert.equal(parseRequest("GET", "/vm/config/", undefined).kind, "getVmConfig");
});

test("path ids are percent-decoded before the id check", () => {
  assert.throws(() => parseRequest("PUT", "/drives/root%2Ffs", drive), (error: ActionError) =>
    error.faultMessage === "API Resource IDs can only contain alphanumeric characters and underscores.",
  );
  assert.throws(() => parseRequest("PUT", "/drives/%E0%A4%A", drive), ActionError);
  assert.throws(() => parseRequest("PUT", "/drives/a/b", drive), /Invalid request method and\/or path: PUT \/drives\/a\/b\./);
});
