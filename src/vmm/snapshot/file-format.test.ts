import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeSnapshotFile, encodeSnapshotFile, HEADER_BYTES } from "./file-format.js";
import { parseSnapshotBody } from "./state-codec.js";

test("a state file round-trips, and every kind of damage is named", () => {
  const file = encodeSnapshotFile({ hello: "world" });
  assert.deepEqual(decodeSnapshotFile(file, "f"), { hello: "world" });
  assert.throws(() => decodeSnapshotFile(file.subarray(0, 10), "f"), /f is truncated: 10 bytes, shorter than its 56-byte header/);
  assert.throws(() => decodeSnapshotFile(file.subarray(0, file.length - 1), "f"), /is truncated: the body is/);
  assert.throws(() => decodeSnapshotFile(Buffer.concat([file, Buffer.from("x")]), "f"), /longer than its header says/);
  const foreign = Buffer.from(file);
  foreign.write("ELF", 0);
  assert.throws(() => decodeSnapshotFile(foreign, "f"), /not a petasan snapshot file/);
  const version = Buffer.from(file);
  version.writeUInt32LE(1, 8);
  assert.throws(() => decodeSnapshotFile(version, "f"), /format version 1; this petasan reads version 2 only \(take the snapshot again with this petasan\)/);
  const flipped = Buffer.from(file);
  flipped[HEADER_BYTES + 2] ^= 1;
  assert.throws(() => decodeSnapshotFile(flipped, "f"), /corrupted: its SHA-256 checksum does not match/);
});

test("a body of the wrong shape is refused, naming the field", () => {
  assert.throws(() => parseSnapshotBody([], "f"), /snapshot file f: the body is not an object/);
  assert.throws(() => parseSnapshotBody({ snapshotType: "Half" }, "f"), /snapshotType is not "Full" or "Diff"/);
  assert.throws(() => parseSnapshotBody({ snapshotType: "Full", config: {} }, "f"), /config is not a valid VM configuration/);
  const config = { "boot-source": { kernel_image_path: "/k" }, "machine-config": { vcpu_count: 1, mem_size_mib: 64 } };
  assert.throws(() => parseSnapshotBody({ snapshotType: "Full", config, memory: [] }, "f"), /memory lists no RAM/);
  const vm = { pit: "", clock: "", picMaster: "", picSlave: "", ioapic: "" };
  const base = { snapshotType: "Full", config, memory: [{ guestAddr: 0, size: 64 << 20 }], vm, devices: { virtio: [] } };
  assert.throws(() => parseSnapshotBody({ ...base, vcpus: [] }, "f"), /vcpus holds 0 vCPUs, the configuration 1/);
  assert.throws(() => parseSnapshotBody({ ...base, vcpus: [{ regs: "!!" }] }, "f"), /vcpus\[0\]\.cpuid is not a list/);
});
