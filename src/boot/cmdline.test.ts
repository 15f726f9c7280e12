import { test } from "node:test";
import assert from "node:assert/strict";
import { GuestMemory } from "../memory/guest-memory.js";
import { Cmdline, CmdlineError, encodeCmdline, splitCmdline, withDefaultArgs, writeCmdline } from "./cmdline.js";

test("builder joins arguments and quotes values with spaces", () => {
  const c = new Cmdline().add("console", "ttyS0").add("ro").add("dyndbg", "file x.c +p").addRaw("  panic=-1 reboot=k ");
  assert.equal(c.toString(), 'console=ttyS0 ro dyndbg="file x.c +p" panic=-1 reboot=k');
});

test("builder rejects bad keys, values and overflow", () => {
  assert.throws(() => new Cmdline().add("a b"), CmdlineError);
  assert.throws(() => new Cmdline().add("k", 'say "hi"'), /cannot parse/);
  assert.throws(() => new Cmdline().add("k", "a\u0000b"), /NUL character/);
  assert.throws(() => new Cmdline().addRaw('root="/dev/vda'), /unbalanced/);
  const small = new Cmdline(10).add("abcd");
  assert.throws(() => small.add("efghi"), /limit is 9/);
  assert.equal(small.toString(), "abcd", "a rejected argument leaves the line unchanged");
});

test("encode adds the NUL and enforces capacity", () => {
  assert.deepEqual([...encodeCmdline("ab", 3)], [0x61, 0x62, 0]);
  assert.throws(() => encodeCmdline("abc", 3), /at most 2/);
  assert.throws(() => encodeCmdline("a\nb"), /0x0a/);
});

test("writeCmdline writes a NUL-terminated string", () => {
  const mem = GuestMemory.anonymous([{ guestAddr: 0, size: 0x1000 }]);
  mem.fill(0x100, 8, 0xff);
  assert.equal(writeCmdline(mem, 0x100, "hi"), 3);
  assert.deepEqual([...mem.read(0x100, 4)], [0x68, 0x69, 0, 0xff]);
});

test("defaults are added only where the line does not set them already", () => {
  assert.deepEqual(splitCmdline(' a=1  dyndbg="file x.c +p" ro '), ["a=1", 'dyndbg="file x.c +p"', "ro"]);
  assert.equal(withDefaultArgs("console=ttyS0", ["noxsave", "root=/dev/vda", "rw"]), "console=ttyS0 noxsave root=/dev/vda rw");
  // The user's own choices win, and what they already wrote is not written twice.
  assert.equal(withDefaultArgs("root=/dev/vdb ro noxsave clearcpuid=1", ["noxsave", "clearcpuid=59", "root=/dev/vda", "rw"]), "root=/dev/vdb ro noxsave clearcpuid=1");
  assert.equal(withDefaultArgs("", ["a", "b=2"]), "a b=2");
  const line = new Cmdline().addRaw("console=ttyS0 root=/dev/vda rw").addDefaults(["root=/dev/vda", "rw", "quiet"]);
  assert.equal(line.toString(), "console=ttyS0 root=/dev/vda rw quiet");
});
