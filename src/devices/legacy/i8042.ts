/**
 * Just enough of the PC's 8042 keyboard controller: the CPU reset line (command 0xfe, which Linux's
 * `reboot=k` writes to port 0x64), a controller that answers Linux's i8042 probe without timeouts, a
 * keyboard that acknowledges commands, and Ctrl-Alt-Del injection. Command and bit values follow
 * Linux's drivers/input/serio/i8042.h and include/linux/i8042.h; behaviour follows Firecracker's
 * devices/legacy/i8042.rs where it has one. There is no mouse, and no IRQ 12.
 */
import type { BusDevice } from "../bus.js";
import type { InterruptLine } from "../interrupt.js";
import { StateReader, type SavedState } from "../saved-state.js";
import { SharedCounters, SharedState, sharedFields } from "../shared-state.js";
import { ByteQueue } from "./byte-queue.js";

/** Data port 0x60 and command/status port 0x64 (PC/AT port map) as one range: offsets 0 and 4. */
export const I8042_PORT_BASE = 0x60;
export const I8042_PORT_COUNT = 5;
/** The keyboard interrupt is ISA IRQ 1. */
export const I8042_KBD_IRQ = 1;

const DATA_OFFSET = 0;
const STATUS_COMMAND_OFFSET = 4;

// Status register bits.
const STR_OBF = 0x01; // output buffer full: a byte waits at port 0x60
const STR_SYS = 0x04; // system flag, mirrors CTR bit 2 (set once the self-test has passed)
const STR_CMDDAT = 0x08; // the last write went to port 0x64 (a command), not 0x60
const STR_KEYLOCK = 0x10; // 1 = keyboard not inhibited by the key lock
const STR_AUXDATA = 0x20; // the waiting byte came from the AUX (mouse) side

// Controller command byte (CTR) bits.
const CTR_KBDINT = 0x01;
const CTR_SYS = 0x04;
const CTR_KBDDIS = 0x10;
const CTR_AUXDIS = 0x20;
const CTR_XLATE = 0x40;
/** Keyboard interrupt on, self-test passed, no translation: Firecracker's initial CTR. Linux then drives the keyboard in scancode set 2. */
const INITIAL_CTR = CTR_KBDINT | CTR_SYS;

// Controller commands written to port 0x64.
const CMD_READ_CTR = 0x20;
const CMD_WRITE_CTR = 0x60;
const CMD_AUX_DISABLE = 0xa7;
const CMD_AUX_ENABLE = 0xa8;
const CMD_CTL_TEST = 0xaa;
const CMD_KBD_TEST = 0xab;
const CMD_KBD_DISABLE = 0xad;
const CMD_KBD_ENABLE = 0xae;
const CMD_READ_OUTPUT_PORT = 0xd0;
const CMD_WRITE_OUTPUT_PORT = 0xd1;
const CMD_WRITE_KBD_BUFFER = 0xd2;
const CMD_WRITE_AUX_BUFFER = 0xd3; // Linux's I8042_CMD_AUX_LOOP
const CMD_WRITE_AUX_DEVICE = 0xd4;
/** 0xf0-0xff pulse output-port lines 0-3 low where the command's low bits are 0; line 0 is CPU reset. */
const CMD_PULSE_FIRST = 0xf0;
const PULSE_RESET_LINE = 0x01;

/** Self-test passed (I8042_RET_CTL_TEST) and keyboard interface test passed. */
const CTL_TEST_OK = 0x55;
const KBD_TEST_OK = 0x00;
/** Output port after reset: bit 0 = CPU not held in reset, bit 1 = A20 enabled. */
const INITIAL_OUTPUT_PORT = 0x03;

// Keyboard (not controller) commands and replies, IBM PS/2 keyboard protocol as used by Linux's atkbd.c.
const KBD_CMD_ECHO = 0xee;
const KBD_CMD_GET_ID = 0xf2;
const KBD_CMD_RESET = 0xff;
const KBD_ACK = 0xfa;
const KBD_BAT_OK = 0xaa;
/** An MF2 keyboard's identity. */
const KBD_ID = [0xab, 0x83] as const;

/** Make codes of Left Ctrl, Left Alt and Delete: scancode set 2, and set 1 when the controller translates. */
const CTRL_ALT_DEL_SET2 = [0x14, 0x11, 0xe0, 0x71] as const;
const CTRL_ALT_DEL_SET1 = [0x1d, 0x38, 0xe0, 0x53] as const;

/** The controller's output buffer holds 16 bytes (I8042_BUFFER_SIZE in Linux, BUF_SIZE in Firecracker). */
const OUTPUT_BUFFER_BYTES = 16;

const OPEN_BUS = 0xff;

export class I8042Error extends Error {
  override readonly name = "I8042Error";
}

export interface I8042Options {
  /** Called when the guest pulses the CPU reset line (on the thread that served the write). */
  onReset: () => void;
  /** ISA IRQ 1, raised while keyboard-side data waits and the guest has enabled the keyboard interrupt. */
  kbdIrq?: InterruptLine;
  /** The controller's registers and buffer, shared with the other threads that serve it (I8042.newState()); its own when absent. */
  state?: SharedArrayBuffer;
}

export interface I8042Metrics {
  resets: number;
  /** Commands this model does not implement (ignored, as by Firecracker). */
  ignoredCommands: number;
  /** Bytes lost because the guest left the output buffer full. */
  droppedBytes: number;
}


const METRIC_NAMES = ["resets", "ignoredCommands", "droppedBytes"] as const;
/** awaitingParameter's value while no command waits for its parameter. */
const NO_COMMAND = -1;

export class I8042 implements BusDevice {
  /** Registers, output buffer and counters, shared by every thread that serves the controller; its lock serializes them. */
  readonly shared: SharedState;
  private readonly onReset: () => void;
  private readonly kbdIrq?: InterruptLine;
  private readonly counters: SharedCounters<(typeof METRIC_NAMES)[number]>;
  declare private ctr: number;
  declare private outputPort: number;
  declare private lastWriteWasCommand: boolean;
  /** A command written to 0x64 that takes its parameter from the next write to 0x60 (NO_COMMAND: none). */
  declare private awaitingParameter: number;
  /** The level this controller last drove IRQ 1 to: whichever thread changes it makes the KVM_IRQ_LINE call. */
  declare private kbdIrqLevel: boolean;
  /** The output buffer: the bytes, and beside each whether it came from the AUX port (1) or not (0). */
  private readonly outputValues: ByteQueue;
  private readonly outputFromAux: ByteQueue;

  /** A fresh controller's shared state, to hand to every thread that serves it. */
  static newState(): SharedArrayBuffer {
    const buffer = SharedState.allocate(STATE_WORDS, 2 * OUTPUT_BUFFER_BYTES);
    const fresh = new I8042({ onReset() {}, state: buffer });
    fresh.ctr = INITIAL_CTR;
    fresh.outputPort = INITIAL_OUTPUT_PORT;
    fresh.awaitingParameter = NO_COMMAND;
    return buffer;
  }

  constructor(options: I8042Options) {
    this.shared = new SharedState(options.state ?? I8042.newState(), STATE_WORDS);
    this.onReset = options.onReset;
    this.kbdIrq = options.kbdIrq;
    this.counters = new SharedCounters(this.shared, COUNTER_WORD, METRIC_NAMES);
    this.outputValues = new ByteQueue(OUTPUT_BUFFER_BYTES, { shared: this.shared, word: VALUES_WORD, byte: 0 });
    this.outputFromAux = new ByteQueue(OUTPUT_BUFFER_BYTES, { shared: this.shared, word: FROM_AUX_WORD, byte: OUTPUT_BUFFER_BYTES });
  }

  /** Counters, as a fresh object (every thread's accesses counted). */
  get metrics(): I8042Metrics {
    return this.counters.read();
  }

  /**
   * Queues the Ctrl-Alt-Del key presses (as Firecracker's SendCtrlAltDel does) and raises IRQ 1 if the
   * guest enabled it. Throws I8042Error when the guest has left no room for the four bytes.
   */
  sendCtrlAltDel(): void {
    this.shared.lock();
    try {
      const codes = this.ctr & CTR_XLATE ? CTRL_ALT_DEL_SET1 : CTRL_ALT_DEL_SET2;
      if (this.outputValues.free < codes.length) {
        throw new I8042Error("cannot send Ctrl-Alt-Del: the i8042 output buffer is full (the guest is not reading its keyboard)");
      }
      for (const code of codes) this.enqueue(code, false);
      this.updateKbdIrq();
    } finally {
      this.shared.unlock();
    }
  }

  /** All i8042 registers are byte-wide; other ports in the range (0x61-0x63) are not this device's and float. */
  read(offset: number, data: Uint8Array): void {
    data.fill(OPEN_BUS);
    if (data.length !== 1) return;
    this.shared.lock();
    try {
      if (offset === DATA_OFFSET) data[0] = this.readData();
      else if (offset === STATUS_COMMAND_OFFSET) data[0] = this.status();
    } finally {
      this.shared.unlock();
    }
  }

  write(offset: number, data: Uint8Array): void {
    if (data.length !== 1) return;
    let reset = false;
    this.shared.lock();
    try {
      if (offset === DATA_OFFSET) this.writeData(data[0]);
      else if (offset === STATUS_COMMAND_OFFSET) reset = this.writeCommand(data[0]);
    } finally {
      this.shared.unlock();
    }
    // Outside the lock: what a reset does is the caller's (it may stop this very thread).
    if (reset) this.onReset();
  }

  private status(): number {
    const head = this.outputValues.length > 0;
    return (
      (head ? STR_OBF : 0) |
      (head && this.outputFromAux.peek() === 1 ? STR_AUXDATA : 0) |
      (this.ctr & CTR_SYS ? STR_SYS : 0) |
      (this.lastWriteWasCommand ? STR_CMDDAT : 0) |
      STR_KEYLOCK
    );
  }

  /** Reading 0x60 takes the waiting byte; an empty buffer reads 0 (as in Firecracker). */
  private readData(): number {
    const head = this.outputValues.shift();
    this.outputFromAux.shift();
    // The output buffer empties before the next byte moves in, so IRQ 1 sees a fresh rising edge.
    this.setKbdIrq(false);
    this.updateKbdIrq();
    return head ?? 0;
  }

  /** Returns true when the command pulses the CPU reset line. */
  private writeCommand(command: number): boolean {
    this.lastWriteWasCommand = true;
    this.awaitingParameter = NO_COMMAND;
    switch (command) {
      case CMD_READ_CTR:
        this.reply(this.ctr);
        break;
      case CMD_READ_OUTPUT_PORT:
        this.reply(this.outputPort);
        break;
      case CMD_CTL_TEST:
        this.reply(CTL_TEST_OK);
        break;
      case CMD_KBD_TEST:
        this.reply(KBD_TEST_OK);
        break;
      case CMD_AUX_DISABLE:
        this.ctr |= CTR_AUXDIS;
        break;
      case CMD_AUX_ENABLE:
        this.ctr &= ~CTR_AUXDIS;
        break;
      case CMD_KBD_DISABLE:
        this.ctr |= CTR_KBDDIS;
        break;
      case CMD_KBD_ENABLE:
        this.ctr &= ~CTR_KBDDIS;
        break;
      case CMD_WRITE_CTR:
      case CMD_WRITE_OUTPUT_PORT:
      case CMD_WRITE_KBD_BUFFER:
      case CMD_WRITE_AUX_BUFFER:
      case CMD_WRITE_AUX_DEVICE:
        this.awaitingParameter = command;
        break;
      default:
        if (command >= CMD_PULSE_FIRST && (command & PULSE_RESET_LINE) === 0) {
          this.counters.bump("resets");
          return true;
        } else if (command < CMD_PULSE_FIRST) {
          this.counters.bump("ignoredCommands");
        }
    }
    return false;
  }

  private writeData(value: number): void {
    this.lastWriteWasCommand = false;
    const command = this.awaitingParameter;
    this.awaitingParameter = NO_COMMAND;
    switch (command) {
      case CMD_WRITE_CTR:
        this.ctr = value;
        this.updateKbdIrq();
        break;
      case CMD_WRITE_OUTPUT_PORT:
        this.outputPort = value;
        break;
      case CMD_WRITE_KBD_BUFFER:
        this.reply(value);
        break;
      case CMD_WRITE_AUX_BUFFER:
        // Answered by the controller itself, so it works with no mouse attached; Linux's AUX probe
        // then waits 250 ms for an IRQ 12 that never comes and decides there is no AUX port.
        this.enqueue(value, true);
        break;
      case CMD_WRITE_AUX_DEVICE:
        this.counters.bump("ignoredCommands"); // no mouse to send it to
        break;
      case NO_COMMAND:
        this.keyboardCommand(value);
        break;
    }
  }

  /** A byte written to 0x60 with no controller command pending goes to the keyboard, which answers. */
  private keyboardCommand(value: number): void {
    switch (value) {
      case KBD_CMD_RESET:
        this.reply(KBD_ACK, KBD_BAT_OK);
        break;
      case KBD_CMD_GET_ID:
        this.reply(KBD_ACK, ...KBD_ID);
        break;
      case KBD_CMD_ECHO:
        this.reply(KBD_CMD_ECHO);
        break;
      default:
        // LED, typematic, scancode-set and enable/disable commands and their parameters: acknowledge.
        this.reply(KBD_ACK);
    }
  }

  /** Bytes from the controller or keyboard, queued behind anything the guest has not read yet. */
  private reply(...values: number[]): void {
    for (const value of values) this.enqueue(value, false);
    this.updateKbdIrq();
  }

  private enqueue(value: number, fromAux: boolean): void {
    if (this.outputValues.free === 0) {
      this.counters.bump("droppedBytes");
      return;
    }
    this.outputValues.push(value);
    this.outputFromAux.push(fromAux ? 1 : 0);
  }

  private updateKbdIrq(): void {
    this.setKbdIrq((this.ctr & CTR_KBDINT) !== 0 && this.outputFromAux.peek() === 0);
  }

  private setKbdIrq(level: boolean): void {
    if (level === this.kbdIrqLevel) return;
    this.kbdIrqLevel = level;
    this.kbdIrq?.setLevel(level);
  }

  /** Controller registers and the output buffer, as plain data (snapshots). */
  saveState(): SavedState {
    this.shared.lock();
    try {
      const fromAux = this.outputFromAux.toArray();
      return {
        ctr: this.ctr, outputPort: this.outputPort, lastWriteWasCommand: this.lastWriteWasCommand,
        awaitingParameter: this.awaitingParameter === NO_COMMAND ? null : this.awaitingParameter,
        outputBuffer: this.outputValues.toArray().map((v, i) => [v, fromAux[i]]),
      };
    } finally {
      this.shared.unlock();
    }
  }

  /** Takes back saveState()'s data (checked first, so a bad field changes nothing) and drives IRQ 1 to match. */
  restoreState(saved: unknown): void {
    const r = new StateReader(saved, "i8042");
    const ctr = r.byte("ctr");
    const outputPort = r.byte("outputPort");
    const lastWriteWasCommand = r.bool("lastWriteWasCommand");
    const awaiting = r.raw("awaitingParameter");
    const parameterCommands: number[] = [CMD_WRITE_CTR, CMD_WRITE_OUTPUT_PORT, CMD_WRITE_KBD_BUFFER, CMD_WRITE_AUX_BUFFER, CMD_WRITE_AUX_DEVICE];
    if (awaiting !== null && !parameterCommands.includes(awaiting as number)) throw new I8042Error("i8042: saved \"awaitingParameter\" is not a command that takes a parameter");
    const buffer = r.array("outputBuffer", OUTPUT_BUFFER_BYTES).map((e) => {
      if (!Array.isArray(e) || e.length !== 2 || !Number.isInteger(e[0]) || e[0] < 0 || e[0] > 0xff || (e[1] !== 0 && e[1] !== 1)) throw new I8042Error("i8042: saved \"outputBuffer\" entries must be [byte, 0|1]");
      return { value: e[0] as number, fromAux: e[1] === 1 };
    });
    this.shared.lock();
    try {
      this.ctr = ctr;
      this.outputPort = outputPort;
      this.lastWriteWasCommand = lastWriteWasCommand;
      this.awaitingParameter = awaiting === null ? NO_COMMAND : (awaiting as number);
      this.outputValues.clear();
      this.outputFromAux.clear();
      for (const b of buffer) this.enqueue(b.value, b.fromAux);
      this.kbdIrqLevel = false;
      this.updateKbdIrq();
    } finally {
      this.shared.unlock();
    }
  }
}

/** The shared state's layout: the lock, the registers (sharedFields), the output buffer's two queues, the counters. */
const REGISTER_END = sharedFields(I8042, { ctr: "int", outputPort: "int", lastWriteWasCommand: "bool", awaitingParameter: "int", kbdIrqLevel: "bool" });
const VALUES_WORD = REGISTER_END;
const FROM_AUX_WORD = VALUES_WORD + ByteQueue.WORDS;
const COUNTER_WORD = FROM_AUX_WORD + ByteQueue.WORDS;
const STATE_WORDS = COUNTER_WORD + SharedCounters.words(METRIC_NAMES);
