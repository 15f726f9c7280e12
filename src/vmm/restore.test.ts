import assert from "node:assert/strict";
import { test } from "node:test";
import { parseVmConfig } from "../config/vm-resources.js";
import { resolveLoadHugePages, withOverrides } from "./restore.js";

test("load huge_pages: Snapshot keeps the saved setting, None and Transparent replace it, a 2M result is refused (no Uffd)", () => {
  assert.equal(resolveLoadHugePages("Transparent"), "Transparent");
  assert.equal(resolveLoadHugePages("None", "Snapshot"), "None");
  assert.equal(resolveLoadHugePages("2M", "None"), "None");
  assert.equal(resolveLoadHugePages("2M", "Transparent"), "Transparent");
  assert.throws(() => resolveLoadHugePages("2M"), /2M huge pages \(hugetlbfs\) by mapping the memory file \(the snapshot's VM used them\): as in Firecracker that needs a Uffd memory backend, which petasan does not have; load it with huge_pages "None" or "Transparent"/);
  assert.throws(() => resolveLoadHugePages("None", "2M"), /by mapping the memory file: as in Firecracker/);
});

test("vsock_override replaces the vsock socket; it is refused for a snapshot without vsock, as Firecracker's UnknownVsockDevice", () => {
  const base = { "boot-source": { kernel_image_path: "/k" }, "machine-config": { vcpu_count: 1, mem_size_mib: 64 } };
  const withVsock = parseVmConfig({ ...base, vsock: { guest_cid: 3, uds_path: "/old.sock" } });
  const config = withOverrides(withVsock, { vsockUdsPath: "/new.sock" });
  assert.deepEqual(config.vsock, { ...withVsock.vsock!, uds_path: "/new.sock" });
  assert.equal(withVsock.vsock!.uds_path, "/old.sock", "the saved config is left as it was");
  assert.deepEqual(withOverrides(withVsock, {}).vsock, withVsock.vsock);
  assert.throws(() => withOverrides(parseVmConfig(base), { vsockUdsPath: "/x" }), /vsock_override: the snapshot has no vsock device/);
});
