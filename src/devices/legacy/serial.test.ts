import { test } from "node:test";
import assert from "node:assert/strict";
import type { InterruptLine } from "../interrupt.js";
import { Serial16550, SerialError } from "./serial.js";

// Register offsets and bits as in the 16550 datasheet / Linux serial_reg.h.
const THR = 0, IER = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7;
const DLL = 0, DLM = 1;
const MCR_OUT2 = 0x08, MCR_LOOP = 0x10;

class FakeIrq implements InterruptLine {
  level = false;
  changes = 0;
  setLevel(high: boolean): void {
    this.level = high;
    this.changes++;
  }
  trigger(): void {
    throw new Error("the UART drives a level, it never sends edges");
  }
}

function setup(inputBufferBytes?: number) {
  const irq = new FakeIrq();
  const sent: number[] = [];
  const uart = new Serial16550({ irq, output: (bytes) => sent.push(...bytes), inputBufferBytes });
  const inb = (reg: number) => {
    const data = new Uint8Array(1);
    uart.read(reg, data);
    return data[0];
  };
  const outb = (reg: number, value: number) => uart.write(reg, Uint8Array.of(value));
  return { uart, irq, sent, inb, outb };
}

test("reset state: no interrupt, transmitter empty, host line connected", () => {
  const { inb, irq } = setup();
  assert.equal(inb(IER), 0);
  assert.equal(inb(IIR), 0x01);
  assert.equal(inb(LCR), 0);
  assert.equal(inb(MCR), 0);
  assert.equal(inb(LSR), 0x60, "THRE | TEMT");
  assert.equal(inb(MSR), 0xb0, "DCD | DSR | CTS");
  assert.equal(irq.changes, 0);
});

test("THR writes go to output; the scratch register holds a byte", () => {
  const { uart, sent, inb, outb } = setup();
  for (const c of "ok\n") outb(THR, c.charCodeAt(0));
  assert.equal(String.fromCharCode(...sent), "ok\n");
  assert.equal(uart.metrics.txBytes, 3);
  outb(SCR, 0xa5);
  assert.equal(inb(SCR), 0xa5);
});

test("DLAB switches offsets 0 and 1 to the divisor latch", () => {
  const { sent, inb, outb } = setup();
  outb(IER, 0x05);
  outb(LCR, 0x83);
  outb(DLL, 0x01);
  outb(DLM, 0x00);
  assert.equal(inb(DLL), 1);
  assert.equal(inb(DLM), 0);
  assert.deepEqual(sent, [], "a DLL write is not a transmit");
  outb(LCR, 0x03);
  assert.equal(inb(IER), 0x05, "IER kept while DLAB was set");
});

test("a wide access is split into byte cycles on consecutive registers, past the end floats", () => {
  const { uart, outb } = setup();
  outb(LCR, 0x80);
  uart.write(DLL, Uint8Array.of(0x34, 0x12));
  const data = new Uint8Array(2);
  uart.read(DLL, data);
  assert.deepEqual([...data], [0x34, 0x12]);
  outb(SCR, 0x77);
  uart.read(SCR, data);
  assert.deepEqual([...data], [0x77, 0xff]);
});

test("Linux's 8250 autoconfig sees a 16550A: IER low nibble only, FIFO bits in IIR, loopback MSR", () => {
  const { inb, outb, sent } = setup();
  outb(IER, 0xff);
  assert.equal(inb(IER), 0x0f, "bits 4-7 never stick (no XScale UUE)");
  outb(IER, 0);
  outb(FCR, 0x01);
  assert.equal(inb(IIR) >> 6, 3, "FIFOs enabled reads as 16550A");
  outb(FCR, 0);
  assert.equal(inb(IIR) >> 6, 0);
  outb(MCR, MCR_LOOP | 0x0a); // loopback + RTS + OUT2
  assert.equal(inb(MSR) & 0xf0, 0x90, "RTS->CTS, OUT2->DCD");
  outb(THR, 0x42);
  assert.deepEqual(sent, [], "loopback keeps bytes off the line");
  assert.equal(inb(LSR) & 0x01, 1);
  assert.equal(inb(THR), 0x42);
});

test("THRE interrupt: raised when ETBEI is set, cleared by reading IIR, raised again by a new enable or a THR write", () => {
  const { inb, outb, irq } = setup();
  outb(MCR, MCR_OUT2);
  outb(IER, 0x02);
  assert.equal(irq.level, true);
  assert.equal(inb(IIR), 0x02);
  assert.equal(irq.level, false, "reading IIR while THRE is the source clears it");
  assert.equal(inb(IIR), 0x01);
  // serial8250_do_startup's UART_BUG_THRE probe: IER=0 then ETBEI again must re-assert THRE.
  outb(IER, 0);
  outb(IER, 0x02);
  assert.equal(inb(IIR), 0x02);
  outb(THR, 0x41);
  assert.equal(irq.level, true, "the byte left at once, THR is empty again");
  outb(IER, 0);
  assert.equal(irq.level, false);
});

test("OUT2 gates the interrupt line; loopback forces OUT2 inactive", () => {
  const { inb, outb, irq } = setup();
  outb(IER, 0x02);
  assert.equal(irq.level, false, "no OUT2, no IRQ");
  assert.equal(inb(IIR), 0x02, "the UART still reports the condition");
  outb(IER, 0);
  outb(IER, 0x02);
  outb(MCR, MCR_OUT2);
  assert.equal(irq.level, true);
  outb(MCR, MCR_OUT2 | MCR_LOOP);
  assert.equal(irq.level, false);
  outb(MCR, 0);
  assert.equal(irq.level, false);
});

test("received data: timeout id below the trigger level, data-available at it, DR until drained", () => {
  const { uart, inb, outb, irq } = setup();
  outb(MCR, MCR_OUT2);
  outb(FCR, 0x41); // FIFOs on, trigger level 4
  outb(IER, 0x01);
  uart.enqueueInput(new TextEncoder().encode("abcde"));
  assert.equal(irq.level, true);
  assert.equal(inb(IIR), 0xc4, "5 bytes >= trigger 4");
  assert.equal(inb(THR), 0x61);
  assert.equal(inb(THR), 0x62);
  assert.equal(inb(IIR), 0xcc, "3 bytes < trigger: character timeout");
  assert.equal(inb(LSR) & 0x01, 1);
  assert.equal(String.fromCharCode(inb(THR), inb(THR), inb(THR)), "cde");
  assert.equal(inb(LSR) & 0x01, 0);
  assert.equal(inb(IIR), 0xc1);
  assert.equal(irq.level, false);
  assert.equal(uart.metrics.rxBytes, 5);
});

test("host input beyond the FIFO waits in the buffer and arrives in order", () => {
  const { uart, inb, outb } = setup();
  outb(FCR, 0x01);
  const input = Uint8Array.from({ length: 100 }, (_, i) => i);
  assert.equal(uart.enqueueInput(input), 100);
  const got: number[] = [];
  while (inb(LSR) & 0x01) got.push(inb(THR));
  assert.deepEqual(got, [...input]);
});

test("with FIFOs off the receiver holds one byte and the rest still arrives", () => {
  const { uart, inb } = setup();
  uart.enqueueInput(Uint8Array.of(1, 2, 3));
  assert.deepEqual([inb(THR), inb(THR), inb(THR)], [1, 2, 3]);
});

test("input past the bound is dropped and counted", () => {
  const { uart, inb } = setup(10);
  assert.equal(uart.inputSpace, 11, "10 buffered + 1 in the 16450-mode receiver");
  assert.equal(uart.enqueueInput(new Uint8Array(30)), 11);
  assert.equal(uart.metrics.inputDropped, 19);
  assert.equal(uart.inputSpace, 0);
  inb(THR);
  assert.equal(uart.inputSpace, 1);
});

test("FCR clears the receive FIFO, and toggling FCR0 clears it too", () => {
  const { uart, inb, outb } = setup();
  outb(FCR, 0x01);
  uart.enqueueInput(Uint8Array.of(1, 2, 3));
  outb(FCR, 0x03);
  assert.equal(inb(LSR) & 0x01, 0);
  uart.enqueueInput(Uint8Array.of(4));
  outb(FCR, 0x00);
  assert.equal(inb(LSR) & 0x01, 0);
});

test("interrupt priorities: line status > received data > THR empty > modem status", () => {
  const { inb, outb, uart } = setup();
  outb(MCR, MCR_LOOP);
  inb(MSR); // entering loopback dropped CTS/DSR/DCD: clear those deltas
  outb(IER, 0x0f);
  outb(MCR, MCR_LOOP | 0x01); // DTR -> DSR changes: a modem status delta
  outb(THR, 1);
  outb(THR, 2); // 16450 mode holds one byte: overrun
  assert.equal(uart.metrics.overruns, 1);
  assert.equal(inb(IIR), 0x06);
  assert.equal(inb(LSR), 0x63, "DR | OE | THRE | TEMT");
  assert.equal(inb(IIR), 0x04);
  assert.equal(inb(THR), 1);
  assert.equal(inb(IIR), 0x02);
  assert.equal(inb(IIR), 0x00, "THRE cleared by the previous IIR read");
  assert.equal(inb(MSR) & 0x0f, 0x02, "DDSR");
  assert.equal(inb(IIR), 0x01);
});

test("loopback modem deltas: TERI only on the trailing edge of RI", () => {
  const { inb, outb } = setup();
  outb(MCR, MCR_LOOP);
  inb(MSR);
  outb(MCR, MCR_LOOP | 0x04); // OUT1 -> RI rises
  assert.equal(inb(MSR), 0x40);
  outb(MCR, MCR_LOOP); // RI falls
  assert.equal(inb(MSR), 0x04);
});

test("host input waits while in loopback and arrives when loopback ends", () => {
  const { uart, inb, outb } = setup();
  outb(MCR, MCR_LOOP);
  uart.enqueueInput(Uint8Array.of(9));
  assert.equal(inb(LSR) & 0x01, 0);
  outb(MCR, 0);
  assert.equal(inb(THR), 9);
});

test("a bad input buffer size is a SerialError", () => {
  assert.throws(
    () => new Serial16550({ irq: new FakeIrq(), output: () => {}, inputBufferBytes: 0 }),
    SerialError,
  );
});

test("transmitted bytes reach the output after the UART's lock is released: a slow console holds up the writer only", () => {
  let serial: Serial16550 | undefined;
  const seen: number[] = [];
  serial = new Serial16550({
    irq: { setLevel() {}, trigger() {} },
    output: (bytes) => {
      // Another thread (host input, another vCPU) could take the lock now.
      assert.equal(serial!.shared.words[0], 0, "the lock is free while output runs");
      seen.push(...bytes);
    },
  });
  serial.write(0, Uint8Array.of(0x41));
  assert.deepEqual(seen, [0x41]);
});
