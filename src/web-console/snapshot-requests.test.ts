import { test } from "node:test";
import assert from "node:assert/strict";
import { parseRestoreRequest, parseSnapshotRequest } from "./snapshot-requests.js";
import { ConsoleRequestError } from "./vm-registry.js";

test("a snapshot body: paths required, Full by default, Diff on request, no overwrite unless asked; anything else is a 400 naming the field", () => {
  assert.deepEqual(parseSnapshotRequest({ snapshotPath: "/v/a.snap", memFilePath: "/v/a.mem" }), { snapshotPath: "/v/a.snap", memFilePath: "/v/a.mem", type: "Full", overwrite: false });
  assert.equal(parseSnapshotRequest({ snapshotPath: "/a", memFilePath: "/b", type: "Diff", overwrite: true }).type, "Diff");
  const bad: [Record<string, unknown>, RegExp][] = [
    [{}, /^snapshotPath: expected/],
    [{ snapshotPath: "/a" }, /^memFilePath: expected/],
    [{ snapshotPath: "", memFilePath: "/b" }, /^snapshotPath: expected/],
    [{ snapshotPath: 1, memFilePath: "/b" }, /^snapshotPath: expected/],
    [{ snapshotPath: "/a", memFilePath: "/b", type: "full" }, /^type: expected "Full" or "Diff" \(got "full"\)/],
    [{ snapshotPath: "/a", memFilePath: "/b", overwrite: "yes" }, /^overwrite: expected true or false/],
    [{ snapshotPath: "/a", memFilePath: "/b", mem_file_path: "/c" }, /unknown field "mem_file_path"/],
  ];
  for (const [body, message] of bad) {
    assert.throws(() => parseSnapshotRequest(body), (e: unknown) => e instanceof ConsoleRequestError && e.status === 400 && message.test(e.message), JSON.stringify(body));
  }
});

test("a restore's snapshot field: paths required, resumed by default, no dirty page tracking unless asked; network overrides refused", () => {
  assert.deepEqual(parseRestoreRequest({ snapshotPath: "/v/a.snap", memFilePath: "/v/a.mem" }), { snapshotPath: "/v/a.snap", memFilePath: "/v/a.mem", resume: true, trackDirtyPages: false });
  assert.deepEqual(parseRestoreRequest({ snapshotPath: "/a", memFilePath: "/b", resume: false, trackDirtyPages: true }), { snapshotPath: "/a", memFilePath: "/b", resume: false, trackDirtyPages: true });
  const bad: [unknown, RegExp][] = [
    ["/v/a.snap", /^snapshot: expected \{/],
    [null, /^snapshot: expected \{/],
    [[], /^snapshot: expected \{/],
    [{ memFilePath: "/b" }, /^snapshot\.snapshotPath: expected/],
    [{ snapshotPath: "/a", memFilePath: "/b", resume: 1 }, /^snapshot\.resume: expected true or false/],
    [{ snapshotPath: "/a", memFilePath: "/b", networkOverrides: [] }, /unknown field "networkOverrides"/],
  ];
  for (const [body, message] of bad) {
    assert.throws(() => parseRestoreRequest(body), (e: unknown) => e instanceof ConsoleRequestError && e.status === 400 && message.test(e.message), JSON.stringify(body));
  }
});
