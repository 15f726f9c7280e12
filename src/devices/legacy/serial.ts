/**
 * A 16550A UART (National Semiconductor PC16550D datasheet; register and bit names follow it and
 * Linux's include/uapi/linux/serial_reg.h). Transmission is instantaneous: a byte written to THR goes
 * straight to `output`, so THR and the transmitter are always empty. Host input waits in a bounded
 * buffer and moves into the receive FIFO as the guest drains it, so nothing is lost while the guest
 * keeps reading. The interrupt output is gated by OUT2 as on the PC's serial adapters.
 */
import type { BusDevice } from "../bus.js";
import type { InterruptLine } from "../interrupt.js";
import { ByteQueue } from "./byte-queue.js";
import { StateReader, type SavedState } from "../saved-state.js";
import { SharedCounters, SharedState, sharedFields } from "../shared-state.js";

/** COM1 on the PC: I/O ports 0x3f8-0x3ff, ISA IRQ 4 (the legacy PC port map; Linux's asm/serial.h). */
export const COM1_PORT_BASE = 0x3f8;
export const COM1_IRQ = 4;
/** The UART decodes three address lines: eight registers. */
export const SERIAL_PORT_COUNT = 8;

/** Default bound on buffered host input (beyond the 16-byte FIFO). */
export const DEFAULT_INPUT_BUFFER_BYTES = 64 * 1024;

/** The 16550A's receive FIFO depth; in 16450 mode (FIFOs off) the receiver holds one byte. */
const FIFO_DEPTH = 16;

// Register offsets (datasheet Table II). With LCR.DLAB set, offsets 0 and 1 are the divisor latch.
const RBR_THR_DLL = 0;
const IER_DLM = 1;
const IIR_FCR = 2;
const LCR = 3;
const MCR = 4;
const LSR = 5;
const MSR = 6;
const SCR = 7;

// IER bits; bits 4-7 are always zero on the 16550A (Linux's autoconfig checks that they do not stick).
const IER_ERBFI = 0x01; // received data available
const IER_ETBEI = 0x02; // transmitter holding register empty
const IER_ELSI = 0x04; // receiver line status
const IER_EDSSI = 0x08; // modem status
const IER_WRITABLE = 0x0f;

// IIR interrupt identification codes, highest priority first (datasheet Table IV).
const IIR_NO_INTERRUPT = 0x01;
const IIR_LINE_STATUS = 0x06;
const IIR_RX_DATA = 0x04;
const IIR_RX_TIMEOUT = 0x0c;
const IIR_THR_EMPTY = 0x02;
const IIR_MODEM_STATUS = 0x00;
/** IIR bits 6-7 read 1 when FCR0 has enabled the FIFOs; Linux's autoconfig reads them to tell a 16550A. */
const IIR_FIFOS_ENABLED = 0xc0;

// FCR bits.
const FCR_ENABLE_FIFOS = 0x01;
const FCR_CLEAR_RX = 0x02;
/** FCR bits 6-7 select the receive trigger level: 1, 4, 8 or 14 bytes. */
const RX_TRIGGER_LEVELS = [1, 4, 8, 14] as const;

const LCR_DLAB = 0x80;

// MCR bits; bits 5-7 are always zero on the 16550A.
const MCR_DTR = 0x01;
const MCR_RTS = 0x02;
const MCR_OUT1 = 0x04;
const MCR_OUT2 = 0x08;
const MCR_LOOP = 0x10;
const MCR_WRITABLE = 0x1f;

// LSR bits.
const LSR_DR = 0x01;
const LSR_OE = 0x02;
const LSR_THRE = 0x20;
const LSR_TEMT = 0x40;

// MSR bits: deltas in the low nibble (cleared by reading MSR), line states in the high nibble.
const MSR_DCTS = 0x01;
const MSR_DDSR = 0x02;
const MSR_TERI = 0x04;
const MSR_DDCD = 0x08;
const MSR_CTS = 0x10;
const MSR_DSR = 0x20;
const MSR_RI = 0x40;
const MSR_DCD = 0x80;
/** Outside loopback the host end is always "connected": CTS, DSR and DCD asserted, no ring. */
const MSR_HOST_CONNECTED = MSR_CTS | MSR_DSR | MSR_DCD;

/** Divisor 12 = 9600 baud from the PC's 1.8432 MHz clock; the datasheet leaves the latch undefined after reset. */
const RESET_DIVISOR = 12;

const OPEN_BUS = 0xff;

export class SerialError extends Error {
  override readonly name = "SerialError";
}

export interface Serial16550Options {
  /** The UART's INTR output as wired on a PC (through OUT2). */
  irq: InterruptLine;
  /** Receives every byte the guest transmits, in order, one fresh array per call. */
  output: (bytes: Uint8Array) => void;
  /** Host input held beyond the receive FIFO before further input is dropped; default 64 KiB. */
  inputBufferBytes?: number;
  /**
   * The UART's registers and buffers, shared with the other threads that serve it (Serial16550.newState()); a
   * UART of its own when absent. The input buffer's size is the state's.
   */
  state?: SharedArrayBuffer;
}

export interface SerialMetrics {
  /** Bytes the guest transmitted to `output` (loopback bytes excluded). */
  txBytes: number;
  /** Bytes the guest read from the receive buffer. */
  rxBytes: number;
  /** Host input dropped because the input buffer was full. */
  inputDropped: number;
  /** Loopback bytes lost because the receive FIFO was full (reported to the guest as LSR.OE). */
  overruns: number;
}

const METRIC_NAMES = ["txBytes", "rxBytes", "inputDropped", "overruns"] as const;

export class Serial16550 implements BusDevice {
  /** Registers, FIFOs and counters, shared by every thread that serves this UART; its lock serializes them. */
  readonly shared: SharedState;
  private readonly irq: InterruptLine;
  private readonly output: (bytes: Uint8Array) => void;
  private readonly counters: SharedCounters<(typeof METRIC_NAMES)[number]>;

  // Registers as reset by the MR pin (datasheet Table VIII); shared fields (sharedFields below).
  declare private ier: number;
  declare private lcr: number;
  declare private mcr: number;
  declare private scr: number;
  declare private dll: number;
  declare private dlm: number;
  declare private fifosEnabled: boolean;
  declare private rxTriggerLevel: number;
  /** LSR error bits latched until the guest reads LSR (only OE can happen here). */
  declare private lineErrors: number;
  declare private modemLines: number;
  declare private modemDeltas: number;
  /**
   * The THRE interrupt is an event, not a level: it is raised when THR becomes empty or when IER.ETBEI
   * is newly set while THR is empty, and cleared by reading IIR while it is the reported source or by
   * writing THR. Linux's 8250 driver relies on this (serial8250_do_startup's UART_BUG_THRE test, and
   * start_tx setting ETBEI to get a fresh interrupt).
   */
  declare private thrEmptyEvent: boolean;
  /** The level this UART last drove its line to: whichever thread changes it makes the KVM_IRQ_LINE call. */
  declare private irqLevel: boolean;

  private readonly rxFifo: ByteQueue;
  private readonly hostInput: ByteQueue;
  /**
   * Bytes this thread's access transmitted, handed to `output` once the lock is released: a console slow to read
   * (or never read) then holds up the transmitting vCPU only, never another thread waiting for the UART.
   */
  private readonly transmitted: number[] = [];

  /** A fresh UART's shared state, to hand to every thread that serves it. */
  static newState(inputBufferBytes = DEFAULT_INPUT_BUFFER_BYTES): SharedArrayBuffer {
    if (!Number.isSafeInteger(inputBufferBytes) || inputBufferBytes <= 0) {
      throw new SerialError(`serial input buffer size must be a positive integer, got ${inputBufferBytes}`);
    }
    const buffer = SharedState.allocate(STATE_WORDS, FIFO_DEPTH + inputBufferBytes);
    new Serial16550({ irq: { setLevel() {}, trigger() {} }, output() {}, state: buffer }).reset();
    return buffer;
  }

  constructor(options: Serial16550Options) {
    const state = options.state ?? Serial16550.newState(options.inputBufferBytes);
    this.shared = new SharedState(state, STATE_WORDS);
    this.irq = options.irq;
    this.output = options.output;
    this.counters = new SharedCounters(this.shared, COUNTER_WORD, METRIC_NAMES);
    this.rxFifo = new ByteQueue(FIFO_DEPTH, { shared: this.shared, word: RX_FIFO_WORD, byte: 0 });
    this.hostInput = new ByteQueue(this.shared.bytes.length - FIFO_DEPTH, { shared: this.shared, word: HOST_INPUT_WORD, byte: FIFO_DEPTH });
  }

  /** Counters, as a fresh object (every thread's accesses counted). */
  get metrics(): SerialMetrics {
    return this.counters.read();
  }

  /** The registers as the MR pin leaves them (datasheet Table VIII). */
  private reset(): void {
    this.ier = 0;
    this.lcr = 0;
    this.mcr = 0;
    this.scr = 0;
    this.dll = RESET_DIVISOR & 0xff;
    this.dlm = RESET_DIVISOR >> 8;
    this.fifosEnabled = false;
    this.rxTriggerLevel = RX_TRIGGER_LEVELS[0];
    this.lineErrors = 0;
    this.modemLines = MSR_HOST_CONNECTED;
    this.modemDeltas = 0;
    this.thrEmptyEvent = false;
    this.irqLevel = false;
    this.rxFifo.clear();
    this.hostInput.clear();
  }

  /**
   * Queues host input for the guest. Returns how many bytes were accepted; the rest are dropped and
   * counted in `metrics.inputDropped`.
   */
  enqueueInput(bytes: Uint8Array): number {
    return this.shared.locked(() => this.enqueueLocked(bytes));
  }

  private enqueueLocked(bytes: Uint8Array): number {
    let accepted = 0;
    for (const byte of bytes) {
      if (!this.hostInput.push(byte)) {
        this.feedReceiver(); // the receiver may still have room
        if (!this.hostInput.push(byte)) break;
      }
      accepted++;
    }
    this.counters.bump("inputDropped", bytes.length - accepted);
    this.feedReceiver();
    this.updateInterrupt();
    return accepted;
  }

  /** How many bytes `enqueueInput` would accept now without dropping any. */
  get inputSpace(): number {
    this.shared.lock();
    try {
      const receiverRoom = this.loopback ? 0 : this.receiverCapacity - this.rxFifo.length;
      return this.hostInput.free + receiverRoom;
    } finally {
      this.shared.unlock();
    }
  }

  /** An ISA bus splits a wide access into byte cycles on consecutive ports; ports past the UART float. */
  read(offset: number, data: Uint8Array): void {
    this.shared.lock();
    try {
      for (let i = 0; i < data.length; i++) {
        const reg = offset + i;
        data[i] = reg < SERIAL_PORT_COUNT ? this.readRegister(reg) : OPEN_BUS;
      }
    } finally {
      this.shared.unlock();
    }
  }

  write(offset: number, data: Uint8Array): void {
    this.shared.lock();
    try {
      for (let i = 0; i < data.length; i++) {
        const reg = offset + i;
        if (reg < SERIAL_PORT_COUNT) this.writeRegister(reg, data[i]);
      }
    } finally {
      this.shared.unlock();
    }
    if (this.transmitted.length > 0) {
      const bytes = Uint8Array.from(this.transmitted);
      this.transmitted.length = 0;
      this.output(bytes);
    }
  }

  private get dlab(): boolean {
    return (this.lcr & LCR_DLAB) !== 0;
  }

  private get loopback(): boolean {
    return (this.mcr & MCR_LOOP) !== 0;
  }

  private readRegister(reg: number): number {
    switch (reg) {
      case RBR_THR_DLL:
        return this.dlab ? this.dll : this.readReceiveBuffer();
      case IER_DLM:
        return this.dlab ? this.dlm : this.ier;
      case IIR_FCR:
        return this.readInterruptIdentification();
      case LCR:
        return this.lcr;
      case MCR:
        return this.mcr;
      case LSR:
        return this.readLineStatus();
      case MSR:
        return this.readModemStatus();
      case SCR:
        return this.scr;
      default:
        return OPEN_BUS;
    }
  }

  private writeRegister(reg: number, value: number): void {
    switch (reg) {
      case RBR_THR_DLL:
        if (this.dlab) this.dll = value;
        else this.transmit(value);
        break;
      case IER_DLM:
        if (this.dlab) this.dlm = value;
        else this.writeInterruptEnable(value);
        break;
      case IIR_FCR:
        this.writeFifoControl(value);
        break;
      case LCR:
        this.lcr = value;
        break;
      case MCR:
        this.writeModemControl(value);
        break;
      case SCR:
        this.scr = value;
        break;
      // LSR writes are a factory test mode and MSR is read-only (datasheet): both are ignored.
    }
  }

  private readReceiveBuffer(): number {
    const byte = this.rxFifo.shift();
    if (byte === undefined) return 0;
    this.counters.bump("rxBytes");
    this.feedReceiver();
    this.updateInterrupt();
    return byte;
  }

  private readInterruptIdentification(): number {
    const id = this.pendingInterrupt();
    if (id === IIR_THR_EMPTY) {
      this.thrEmptyEvent = false;
      this.updateInterrupt();
    }
    return id | (this.fifosEnabled ? IIR_FIFOS_ENABLED : 0);
  }

  private readLineStatus(): number {
    const status = (this.rxFifo.length > 0 ? LSR_DR : 0) | this.lineErrors | LSR_THRE | LSR_TEMT;
    this.lineErrors = 0;
    this.updateInterrupt();
    return status;
  }

  private readModemStatus(): number {
    const status = this.modemLines | this.modemDeltas;
    this.modemDeltas = 0;
    this.updateInterrupt();
    return status;
  }

  private transmit(byte: number): void {
    if (this.loopback) {
      this.receive(byte);
    } else {
      this.counters.bump("txBytes");
      this.transmitted.push(byte);
    }
    // Writing THR clears the THRE interrupt, but the byte leaves at once, so THR is empty again and
    // the interrupt is raised anew, as on real hardware once the byte reaches the shift register.
    this.thrEmptyEvent = true;
    this.updateInterrupt();
  }

  /** A byte arriving at the receiver: into the FIFO, or an overrun when it is full (datasheet LSR1). */
  private receive(byte: number): void {
    if (this.rxFifo.length < this.receiverCapacity) {
      this.rxFifo.push(byte);
    } else {
      this.lineErrors |= LSR_OE;
      this.counters.bump("overruns");
    }
  }

  private get receiverCapacity(): number {
    return this.fifosEnabled ? FIFO_DEPTH : 1;
  }

  /** Moves buffered host input into the receiver while it has room; loopback disconnects the line. */
  private feedReceiver(): void {
    if (this.loopback) return;
    while (this.rxFifo.length < this.receiverCapacity && this.hostInput.length > 0) {
      this.rxFifo.push(this.hostInput.shift()!);
    }
  }

  private writeInterruptEnable(value: number): void {
    const enabled = value & IER_WRITABLE;
    if (enabled & IER_ETBEI & ~this.ier) this.thrEmptyEvent = true; // THR is always empty here
    this.ier = enabled;
    this.updateInterrupt();
  }

  private writeFifoControl(value: number): void {
    const enable = (value & FCR_ENABLE_FIFOS) !== 0;
    // Changing FCR0 clears both FIFOs; the other bits are only written while FCR0 is 1 (datasheet).
    if (enable !== this.fifosEnabled) this.rxFifo.clear();
    this.fifosEnabled = enable;
    if (enable) {
      if (value & FCR_CLEAR_RX) this.rxFifo.clear();
      // FCR2 clears the transmit FIFO, which is always empty here.
      this.rxTriggerLevel = RX_TRIGGER_LEVELS[value >> 6];
    }
    this.feedReceiver();
    this.updateInterrupt();
  }

  private writeModemControl(value: number): void {
    this.mcr = value & MCR_WRITABLE;
    this.setModemLines(this.loopback ? loopbackModemLines(this.mcr) : MSR_HOST_CONNECTED);
    this.feedReceiver();
    this.updateInterrupt();
  }

  private setModemLines(lines: number): void {
    const changed = lines ^ this.modemLines;
    if (changed & MSR_CTS) this.modemDeltas |= MSR_DCTS;
    if (changed & MSR_DSR) this.modemDeltas |= MSR_DDSR;
    if (changed & MSR_DCD) this.modemDeltas |= MSR_DDCD;
    // TERI reports only the trailing edge of ring: RI going from asserted to not.
    if (changed & MSR_RI & this.modemLines) this.modemDeltas |= MSR_TERI;
    this.modemLines = lines;
  }

  /** The highest-priority enabled interrupt condition as an IIR code (datasheet Table IV). */
  private pendingInterrupt(): number {
    if (this.ier & IER_ELSI && this.lineErrors) return IIR_LINE_STATUS;
    if (this.ier & IER_ERBFI && this.rxFifo.length > 0) {
      // The character timeout fires after four idle character times below the trigger level; the
      // host line is idle as soon as the FIFO has been fed, so it is reported at once.
      return this.fifosEnabled && this.rxFifo.length < this.rxTriggerLevel ? IIR_RX_TIMEOUT : IIR_RX_DATA;
    }
    if (this.ier & IER_ETBEI && this.thrEmptyEvent) return IIR_THR_EMPTY;
    if (this.ier & IER_EDSSI && this.modemDeltas) return IIR_MODEM_STATUS;
    return IIR_NO_INTERRUPT;
  }

  /**
   * Drives the interrupt line to "an interrupt is pending and OUT2 is active". The PC gates INTR with
   * the OUT2 pin, which loopback mode forces inactive (datasheet MCR4), so loopback raises no IRQ.
   */
  private updateInterrupt(): void {
    const out2 = (this.mcr & MCR_OUT2) !== 0 && !this.loopback;
    const level = out2 && this.pendingInterrupt() !== IIR_NO_INTERRUPT;
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.irq.setLevel(level);
    }
  }

  /** Registers, FIFO contents and pending host input, as plain data (snapshots). */
  saveState(): SavedState {
    return this.shared.locked(() => this.saveLocked());
  }

  private saveLocked(): SavedState {
    return {
      ier: this.ier, lcr: this.lcr, mcr: this.mcr, scr: this.scr, dll: this.dll, dlm: this.dlm, fifosEnabled: this.fifosEnabled,
      rxTriggerLevel: this.rxTriggerLevel, lineErrors: this.lineErrors, modemLines: this.modemLines, modemDeltas: this.modemDeltas,
      thrEmptyEvent: this.thrEmptyEvent, rxFifo: this.rxFifo.toArray(), hostInput: this.hostInput.toArray(),
    };
  }

  /** Takes back saveState()'s data (checked first, so a bad field changes nothing) and drives the IRQ line to match. */
  restoreState(saved: unknown): void {
    return this.shared.locked(() => this.restoreLocked(saved));
  }

  private restoreLocked(saved: unknown): void {
    const r = new StateReader(saved, "serial");
    const next = {
      ier: r.byte("ier"), lcr: r.byte("lcr"), mcr: r.byte("mcr"), scr: r.byte("scr"), dll: r.byte("dll"), dlm: r.byte("dlm"),
      fifosEnabled: r.bool("fifosEnabled"), rxTriggerLevel: r.int("rxTriggerLevel", 1, FIFO_DEPTH), lineErrors: r.byte("lineErrors"),
      modemLines: r.byte("modemLines"), modemDeltas: r.byte("modemDeltas"), thrEmptyEvent: r.bool("thrEmptyEvent"),
      rxFifo: r.bytes("rxFifo", FIFO_DEPTH), hostInput: r.bytes("hostInput", this.hostInput.capacity),
    };
    this.ier = next.ier; this.lcr = next.lcr; this.mcr = next.mcr; this.scr = next.scr; this.dll = next.dll; this.dlm = next.dlm;
    this.fifosEnabled = next.fifosEnabled; this.rxTriggerLevel = next.rxTriggerLevel; this.lineErrors = next.lineErrors;
    this.modemLines = next.modemLines; this.modemDeltas = next.modemDeltas; this.thrEmptyEvent = next.thrEmptyEvent;
    this.rxFifo.clear();
    for (const b of next.rxFifo) this.rxFifo.push(b);
    this.hostInput.clear();
    for (const b of next.hostInput) this.hostInput.push(b);
    // A fresh device's line is low; drive it to what the restored registers say (the saved level, recomputed).
    this.irqLevel = false;
    this.updateInterrupt();
  }
}

/** The shared state's layout: the lock, the registers (sharedFields), the two byte queues' words, the counters. */
const REGISTER_END = sharedFields(Serial16550, {
  ier: "int", lcr: "int", mcr: "int", scr: "int", dll: "int", dlm: "int", fifosEnabled: "bool", rxTriggerLevel: "int",
  lineErrors: "int", modemLines: "int", modemDeltas: "int", thrEmptyEvent: "bool", irqLevel: "bool",
});
const RX_FIFO_WORD = REGISTER_END;
const HOST_INPUT_WORD = RX_FIFO_WORD + ByteQueue.WORDS;
const COUNTER_WORD = HOST_INPUT_WORD + ByteQueue.WORDS;
const STATE_WORDS = COUNTER_WORD + SharedCounters.words(METRIC_NAMES);

/** In loopback the modem outputs feed the inputs: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD (datasheet MCR4). */
function loopbackModemLines(mcr: number): number {
  return (
    (mcr & MCR_DTR ? MSR_DSR : 0) |
    (mcr & MCR_RTS ? MSR_CTS : 0) |
    (mcr & MCR_OUT1 ? MSR_RI : 0) |
    (mcr & MCR_OUT2 ? MSR_DCD : 0)
  );
}
