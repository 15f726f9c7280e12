import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError } from "./schema.js";
import { serdeMessage } from "./serde-message.js";
import { vmConfigSchema } from "./vm-config.js";

function messageFor(text: string): string | undefined {
  try {
    vmConfigSchema.parse(JSON.parse(text));
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return serdeMessage(error, text);
  }
  assert.fail("expected a ConfigError");
}

test("serde's position: the object's closing brace for a missing field, through arrays and nested objects", () => {
  const text = '{"boot-source": {"kernel_image_path": "k"},\n "drives": [{"drive_id": "a", "path_on_host": "p", "is_root_device": false},\n  {"drive_id": "b", "is_root_device": false}]}';
  assert.equal(messageFor(text), "missing field `path_on_host` at line 3 column 44");
});

test("serde's position: the closing quote of an unknown key, the last character of a bad value", () => {
  assert.equal(messageFor('{"boot-source": {"kernel_image_path": "k", "kernel": 1}}'), "unknown field `kernel`, expected one of `kernel_image_path`, `boot_args`, `initrd_path` at line 1 column 51");
  assert.equal(messageFor('{"boot-source": {"kernel_image_path": "k"}, "machine-config": {"vcpu_count": 1, "mem_size_mib": "128"}}'), 'invalid type: string "128", expected usize at line 1 column 101');
});

test("columns count bytes, as serde_json's", () => {
  assert.equal(messageFor('{"boot-source": {"kernel_image_path": "é", "x": 1}}'), "unknown field `x`, expected one of `kernel_image_path`, `boot_args`, `initrd_path` at line 1 column 47");
});

test("errors serde would not raise have no serde text", () => {
  assert.equal(messageFor('{"boot-source": {"kernel_image_path": ""}}'), undefined);
});
