import { test } from "node:test";
import assert from "node:assert/strict";
import type { InterruptLine } from "../interrupt.js";
import { I8042, I8042Error } from "./i8042.js";

const DATA = 0, STATUS = 4;
const OBF = 0x01, IBF = 0x02, AUXDATA = 0x20;

class FakeIrq implements InterruptLine {
  level = false;
  rises = 0;
  setLevel(high: boolean): void {
    if (high && !this.level) this.rises++;
    this.level = high;
  }
  trigger(): void {
    throw new Error("the i8042 drives IRQ 1 as a level");
  }
}

function setup() {
  let resets = 0;
  const irq = new FakeIrq();
  const kbc = new I8042({ onReset: () => resets++, kbdIrq: irq });
  const inb = (port: number) => {
    const data = new Uint8Array(1);
    kbc.read(port, data);
    return data[0];
  };
  const outb = (port: number, value: number) => kbc.write(port, Uint8Array.of(value));
  /** Linux's i8042_command: command, parameters, then read `replies` bytes waiting for OBF. */
  const command = (cmd: number, params: number[] = [], replies = 0) => {
    assert.equal(inb(STATUS) & IBF, 0, "never busy");
    outb(STATUS, cmd);
    for (const p of params) outb(DATA, p);
    const out: number[] = [];
    for (let i = 0; i < replies; i++) {
      assert.ok(inb(STATUS) & OBF, `reply ${i} to 0x${cmd.toString(16)} is waiting`);
      out.push(inb(DATA));
    }
    return out;
  };
  return { kbc, irq, inb, outb, command, resets: () => resets };
}

test("reboot=k: 0xfe on port 0x64 calls onReset once per write", () => {
  const { kbc, inb, outb, resets } = setup();
  assert.equal(inb(STATUS) & IBF, 0, "kb_wait() sees the input buffer empty");
  outb(STATUS, 0xfe);
  assert.equal(resets(), 1);
  assert.equal(kbc.metrics.resets, 1);
  outb(STATUS, 0xff); // pulses no line
  outb(DATA, 0xfe); // a keyboard command, not a reset
  assert.equal(resets(), 1);
});

test("status after reset: empty, not locked, self-test passed", () => {
  const { inb } = setup();
  assert.equal(inb(STATUS), 0x14);
});

test("controller commands Linux's probe uses get their answers", () => {
  const { command } = setup();
  assert.deepEqual(command(0xaa, [], 1), [0x55], "self-test");
  assert.deepEqual(command(0xab, [], 1), [0x00], "keyboard interface test");
  const [ctr] = command(0x20, [], 1);
  assert.equal(ctr, 0x05, "KBDINT | SYS, no translation");
  command(0x60, [0x10]);
  assert.deepEqual(command(0x20, [], 1), [0x10]);
  command(0xa7);
  assert.deepEqual(command(0x20, [], 1), [0x30], "AUX disable sets CTR.AUXDIS");
  command(0xa8);
  assert.deepEqual(command(0x20, [], 1), [0x10]);
  assert.deepEqual(command(0xd0, [], 1), [0x03], "output port: not in reset, A20 on");
  command(0xd1, [0xdf]);
  assert.deepEqual(command(0xd0, [], 1), [0xdf]);
});

test("AUX loopback answers from the AUX side, without IRQ 1", () => {
  const { inb, command, irq } = setup();
  command(0xd3, [0x5a]);
  assert.equal(inb(STATUS) & (OBF | AUXDATA), OBF | AUXDATA);
  assert.equal(irq.level, false);
  assert.equal(inb(DATA), 0x5a);
  assert.equal(inb(STATUS) & OBF, 0);
});

test("the CMD/DATA status bit tells which port was written last", () => {
  const { inb, outb } = setup();
  outb(STATUS, 0x60);
  assert.ok(inb(STATUS) & 0x08);
  outb(DATA, 0x01);
  assert.equal(inb(STATUS) & 0x08, 0);
});

test("the keyboard acknowledges commands, identifies itself and passes its reset", () => {
  const { inb, outb } = setup();
  const readAll = () => {
    const out: number[] = [];
    while (inb(STATUS) & OBF) out.push(inb(DATA));
    return out;
  };
  outb(DATA, 0xf2);
  assert.deepEqual(readAll(), [0xfa, 0xab, 0x83]);
  outb(DATA, 0xff);
  assert.deepEqual(readAll(), [0xfa, 0xaa]);
  outb(DATA, 0xed);
  outb(DATA, 0x07);
  assert.deepEqual(readAll(), [0xfa, 0xfa], "set LEDs and its parameter are both acknowledged");
  outb(DATA, 0xee);
  assert.deepEqual(readAll(), [0xee]);
  assert.equal(inb(DATA), 0, "an empty buffer reads 0");
});

test("Ctrl-Alt-Del: set-2 make codes, one IRQ 1 edge per byte", () => {
  const { kbc, inb, irq } = setup();
  kbc.sendCtrlAltDel();
  assert.equal(irq.level, true);
  const got: number[] = [];
  while (inb(STATUS) & OBF) got.push(inb(DATA));
  assert.deepEqual(got, [0x14, 0x11, 0xe0, 0x71]);
  assert.equal(irq.rises, 4);
  assert.equal(irq.level, false);
});

test("Ctrl-Alt-Del is translated to set 1 when the guest enables translation", () => {
  const { kbc, inb, command } = setup();
  command(0x60, [0x45]);
  kbc.sendCtrlAltDel();
  const got: number[] = [];
  while (inb(STATUS) & OBF) got.push(inb(DATA));
  assert.deepEqual(got, [0x1d, 0x38, 0xe0, 0x53]);
});

test("no IRQ 1 while the guest has the keyboard interrupt disabled; enabling it raises the line", () => {
  const { kbc, irq, command } = setup();
  command(0x60, [0x04]);
  kbc.sendCtrlAltDel();
  assert.equal(irq.level, false);
  command(0x60, [0x05]);
  assert.equal(irq.level, true);
});

test("Ctrl-Alt-Del into a full output buffer is an I8042Error, and a flooded buffer drops and counts", () => {
  const { kbc, outb } = setup();
  for (let i = 0; i < 7; i++) outb(DATA, 0xf2); // 21 reply bytes into a 16-byte buffer
  assert.equal(kbc.metrics.droppedBytes, 5);
  assert.throws(() => kbc.sendCtrlAltDel(), I8042Error);
});

test("wide accesses and the other ports of the range float", () => {
  const { kbc } = setup();
  const wide = new Uint8Array(2);
  kbc.read(4, wide);
  assert.deepEqual([...wide], [0xff, 0xff]);
  const port61 = new Uint8Array(1);
  kbc.read(1, port61);
  assert.equal(port61[0], 0xff);
});
