import { test } from "node:test";
import assert from "node:assert/strict";
import { CmosRtc } from "./rtc.js";

const INDEX = 0, DATA = 1;

function setup(start: string) {
  let now = new Date(start).getTime();
  const rtc = new CmosRtc({ clock: () => new Date(now) });
  const read = (reg: number) => {
    rtc.write(INDEX, Uint8Array.of(reg));
    const data = new Uint8Array(1);
    rtc.read(DATA, data);
    return data[0];
  };
  const write = (reg: number, value: number) => {
    rtc.write(INDEX, Uint8Array.of(reg));
    rtc.write(DATA, Uint8Array.of(value));
  };
  const advance = (ms: number) => {
    now += ms;
  };
  const time = () => [0x32, 0x09, 0x08, 0x07, 0x04, 0x02, 0x00].map(read);
  return { rtc, read, write, advance, time };
}

test("time registers in BCD, 24-hour, from the injected clock (UTC)", () => {
  const { read, time } = setup("2024-02-29T23:58:07Z");
  assert.deepEqual(time(), [0x20, 0x24, 0x02, 0x29, 0x23, 0x58, 0x07]);
  assert.equal(read(0x06), 5, "Thursday; 1 = Sunday");
});

test("status registers: A not updating, B 24h BCD, C no flags, D valid", () => {
  const { read } = setup("2024-01-01T00:00:00Z");
  assert.equal(read(0x0a), 0x26);
  assert.equal(read(0x0b), 0x02);
  assert.equal(read(0x0c), 0x00);
  assert.equal(read(0x0d), 0x80);
});

test("binary mode and 12-hour mode per status B", () => {
  const { read, write } = setup("2024-07-04T13:05:09Z");
  write(0x0b, 0x06);
  assert.equal(read(0x04), 13);
  assert.equal(read(0x00), 9);
  write(0x0b, 0x00); // 12-hour BCD
  assert.equal(read(0x04), 0x81, "1 PM");
});

test("bit 7 of the index (NMI mask) does not change the register selected", () => {
  const { rtc, read } = setup("2024-01-01T00:00:42Z");
  rtc.write(INDEX, Uint8Array.of(0x80));
  const data = new Uint8Array(1);
  rtc.read(DATA, data);
  assert.equal(data[0], read(0x00));
  assert.equal(data[0], 0x42);
});

test("the guest sets the clock with SET: frozen while set, then runs on from the new time", () => {
  const { read, write, advance, time } = setup("2024-01-01T00:00:00Z");
  write(0x0b, 0x82);
  write(0x00, 0x30);
  write(0x02, 0x15);
  write(0x04, 0x10);
  write(0x07, 0x05);
  write(0x08, 0x06);
  write(0x09, 0x25);
  advance(5000);
  assert.equal(read(0x00), 0x30, "frozen while SET");
  write(0x0b, 0x02);
  advance(2000);
  assert.deepEqual(time(), [0x20, 0x25, 0x06, 0x05, 0x10, 0x15, 0x32]);
});

test("a time write without SET takes effect at once", () => {
  const { read, write } = setup("2024-01-01T00:00:00Z");
  write(0x02, 0x45);
  assert.equal(read(0x02), 0x45);
});

test("alarms read back; unknown indexes read 0 and ignore writes; port 0x70 reads float", () => {
  const { rtc, read, write } = setup("2024-01-01T00:00:00Z");
  write(0x01, 0x59);
  assert.equal(read(0x01), 0x59);
  write(0x10, 0xaa);
  assert.equal(read(0x10), 0);
  assert.equal(read(0x7f), 0);
  const data = new Uint8Array(1);
  rtc.read(INDEX, data);
  assert.equal(data[0], 0xff);
});

test("garbage time values from the guest do not break the clock", () => {
  const { read, write } = setup("2024-01-01T00:00:00Z");
  write(0x08, 0xff);
  write(0x09, 0xff);
  assert.ok(Number.isInteger(read(0x09)));
});
