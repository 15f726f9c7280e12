import { test } from "node:test";
import assert from "node:assert/strict";
import { CpioError, CpioWriter, S_IFCHR, S_IFDIR, S_IFREG, TRAILER_NAME } from "./cpio.js";

interface ParsedEntry {
  offset: number;
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  rdevMajor: number;
  rdevMinor: number;
  check: number;
  name: string;
  data: Buffer;
}

/** An independent newc reader (buffer-format.rst) that insists on every rule a writer must follow. */
function parseNewc(archive: Buffer): ParsedEntry[] {
  const entries: ParsedEntry[] = [];
  let offset = 0;
  for (;;) {
    assert.equal(offset % 4, 0, `entry at ${offset} is not 4-byte aligned`);
    const header = archive.subarray(offset, offset + 110).toString("ascii");
    assert.equal(header.slice(0, 6), "070701", `magic at ${offset}`);
    const field = (i: number): number => {
      const hex = header.slice(6 + 8 * i, 14 + 8 * i);
      assert.match(hex, /^[0-9a-f]{8}$/, `field ${i} at ${offset}`);
      return parseInt(hex, 16);
    };
    const nameSize = field(11);
    const nameStart = offset + 110;
    const nameEnd = nameStart + nameSize;
    assert.equal(archive[nameEnd - 1], 0, "name is NUL-terminated");
    const dataStart = Math.ceil(nameEnd / 4) * 4;
    assert.ok(archive.subarray(nameEnd, dataStart).every((b) => b === 0), "name padding is zeros");
    const fileSize = field(6);
    const dataEnd = dataStart + fileSize;
    const next = Math.ceil(dataEnd / 4) * 4;
    assert.ok(archive.subarray(dataEnd, next).every((b) => b === 0), "data padding is zeros");
    const entry: ParsedEntry = {
      offset,
      ino: field(0),
      mode: field(1),
      uid: field(2),
      gid: field(3),
      nlink: field(4),
      mtime: field(5),
      rdevMajor: field(9),
      rdevMinor: field(10),
      check: field(12),
      name: archive.subarray(nameStart, nameEnd - 1).toString("utf8"),
      data: archive.subarray(dataStart, dataEnd),
    };
    entries.push(entry);
    offset = next;
    if (entry.name === TRAILER_NAME) break;
  }
  assert.equal(offset, archive.length, "nothing after the trailer");
  return entries;
}

test("an initramfs layout parses back entry by entry", () => {
  const init = Buffer.from("\x7fELF-init-binary"); // 16 bytes
  const hello = Buffer.from("hello"); // 5 bytes: needs data padding
  const archive = new CpioWriter()
    .addDirectory("/dev")
    .addCharDevice("/dev/console", 5, 1)
    .addDirectory("proc", 0o555)
    .addFile("/init", init, 0o755)
    .addFile("proc/hello.txt", hello)
    .toBuffer();

  const entries = parseNewc(archive);
  assert.deepEqual(entries.map((e) => e.name), ["dev", "dev/console", "proc", "init", "proc/hello.txt", TRAILER_NAME]);
  const [dev, consoleNode, proc, initEntry, helloEntry, trailer] = entries;

  assert.equal(dev!.mode, S_IFDIR | 0o755);
  assert.equal(dev!.nlink, 2);
  assert.equal(consoleNode!.mode, S_IFCHR | 0o600);
  assert.deepEqual([consoleNode!.rdevMajor, consoleNode!.rdevMinor], [5, 1]);
  assert.equal(proc!.mode, S_IFDIR | 0o555);
  assert.equal(initEntry!.mode, S_IFREG | 0o755);
  assert.deepEqual(initEntry!.data, init);
  assert.deepEqual(helloEntry!.data, hello);
  assert.equal(helloEntry!.mode, S_IFREG | 0o644);
  assert.equal(trailer!.ino, 0);
  assert.equal(trailer!.data.length, 0);

  const inodes = entries.slice(0, -1).map((e) => e.ino);
  assert.equal(new Set(inodes).size, inodes.length, "inode numbers are distinct");
  for (const e of entries) {
    assert.deepEqual([e.uid, e.gid, e.mtime, e.check], [0, 0, 0, 0], `${e.name}: root-owned, fixed mtime, no checksum`);
  }
});

test("header fields and padding sit at the documented byte offsets", () => {
  const archive = new CpioWriter().addFile("ab", Buffer.from("xyz"), 0o640).toBuffer();
  // header 110 + "ab\0" 3 = 113, padded to 116; data 3 bytes padded to 120; then the trailer header.
  assert.equal(archive.subarray(0, 6).toString("ascii"), "070701");
  assert.equal(archive.subarray(14, 22).toString("ascii"), (S_IFREG | 0o640).toString(16).padStart(8, "0"));
  assert.equal(archive.subarray(54, 62).toString("ascii"), "00000003", "filesize");
  assert.equal(archive.subarray(94, 102).toString("ascii"), "00000003", "namesize includes the NUL");
  assert.equal(archive.subarray(110, 116).toString("latin1"), "ab\0\0\0\0");
  assert.equal(archive.subarray(116, 120).toString("latin1"), "xyz\0");
  assert.equal(archive.subarray(120, 126).toString("ascii"), "070701");
  // Trailer: 110 + "TRAILER!!!\0" 11 = 121, padded to 124.
  assert.equal(archive.length, 120 + 124);
});

test("the same entries give byte-identical archives", () => {
  const build = (): Buffer => new CpioWriter().addDirectory("d").addFile("d/f", Buffer.from("1")).toBuffer();
  assert.deepEqual(build(), build());
});

test("an empty archive is only the trailer", () => {
  const entries = parseNewc(new CpioWriter().toBuffer());
  assert.deepEqual(entries.map((e) => e.name), [TRAILER_NAME]);
});

test("bad requests are refused with a CpioError naming the problem", () => {
  const w = new CpioWriter().addDirectory("dev").addFile("init", Buffer.alloc(0));
  assert.throws(() => w.addFile("init", Buffer.alloc(0)), { name: "CpioError", message: /init: already in the archive/ });
  assert.throws(() => w.addFile("etc/passwd", Buffer.alloc(0)), { name: "CpioError", message: /parent directory etc must be added first/ });
  assert.throws(() => w.addFile("init/x", Buffer.alloc(0)), { name: "CpioError", message: /parent directory init/ });
  assert.throws(() => w.addFile("../escape", Buffer.alloc(0)), CpioError);
  assert.throws(() => w.addFile("a//b", Buffer.alloc(0)), CpioError);
  assert.throws(() => w.addDirectory("/"), CpioError);
  assert.throws(() => w.addFile(TRAILER_NAME, Buffer.alloc(0)), /reserved/);
  assert.throws(() => w.addFile("x", Buffer.alloc(0), 0o10000), /permissions/);
  assert.throws(() => w.addCharDevice("dev/bad", -1, 0), /device major -1/);
  assert.throws(() => w.addCharDevice("dev/bad", 1, 2 ** 32), /device minor/);
});
