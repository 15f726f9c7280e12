import assert from "node:assert/strict";
import { test } from "node:test";
import { ActionError } from "./errors.js";
import { parseRequest } from "./routes.js";
import { readFileSync } from "node:fs";
import { FIRECRACKER_API_YAML } from "../config/swagger-definitions.js";

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

/** Every method and path of the swagger's `paths` section, e.g. ["PUT", "/drives/{drive_id}"]. */
function swaggerEndpoints(): [string, string][] {
  const endpoints: [string, string][] = [];
  let path = "";
  let inPaths = false;
  for (const line of readFileSync(FIRECRACKER_API_YAML, "utf8").split("\n")) {
    if (line === "paths:") inPaths = true;
    else if (/^\S/.test(line)) inPaths = false;
    if (!inPaths) continue;
    const pathMatch = /^  (\/\S*):$/.exec(line);
    if (pathMatch) path = pathMatch[1];
    const methodMatch = /^    (get|put|patch|delete):$/.exec(line);
    if (methodMatch) endpoints.push([methodMatch[1].toUpperCase(), path]);
  }
  return endpoints;
}

test("every swagger endpoint is routed, or refused with a one-line 'petasan does not support ... yet'", () => {
  const endpoints = swaggerEndpoints();
  assert.ok(endpoints.length > 30, `only ${endpoints.length} endpoints read`);
  const notYet: string[] = [];
  for (const [method, path] of endpoints) {
    const url = path.replace(/\{[^}]+\}/g, "x1");
    try {
      parseRequest(method, url, method === "GET" ? undefined : "{}");
    } catch (error) {
      assert.ok(error instanceof ActionError, `${method} ${path}: ${error}`);
      assert.doesNotMatch(error.faultMessage, /Invalid request method and\/or path/, `${method} ${path}`);
      if (/petasan does not support/.test(error.faultMessage)) {
        assert.match(error.faultMessage, new RegExp(`^${method} ${url.replace(/[/]/g, "\\/")}: petasan does not support [^\\n]+ yet\\.$`));
        notYet.push(`${method} ${path}`);
      }
    }
  }
  assert.ok(!notYet.includes("PUT /vsock") && !notYet.includes("GET /mmds") && !notYet.includes("PUT /snapshot/create") && notYet.includes("PUT /cpu-config"), notYet.join(", "));
  assert.throws(() => parseRequest("GET", "/vsock", undefined), /Invalid request method and\/or path: GET \/vsock\./);
});
