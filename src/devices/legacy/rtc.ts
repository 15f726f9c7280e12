/**
 * The PC's CMOS real-time clock, a Motorola MC146818A, at ports 0x70 (index) and 0x71 (data).
 * Register numbers and bits follow the MC146818A datasheet and Linux's include/linux/mc146818rtc.h.
 * Time comes from an injected clock (read as UTC, as Linux expects of a PC RTC); a guest that sets
 * the clock moves only its own view, kept as an offset from the injected clock. No interrupts (IRQ 8)
 * and no CMOS RAM are modelled: the other indexes read 0 and ignore writes.
 */
import type { BusDevice } from "../bus.js";
import { SharedState, sharedFields } from "../shared-state.js";
import { StateReader, type SavedState } from "../saved-state.js";

export const RTC_PORT_BASE = 0x70;
export const RTC_PORT_COUNT = 2;

const INDEX_OFFSET = 0;
const DATA_OFFSET = 1;
/** Bit 7 of the index port masks NMIs on the PC; petasan's chipset raises none, so only bits 0-6 matter. */
const INDEX_MASK = 0x7f;

// Register indexes.
const REG_SECONDS = 0x00;
const REG_SECONDS_ALARM = 0x01;
const REG_MINUTES = 0x02;
const REG_MINUTES_ALARM = 0x03;
const REG_HOURS = 0x04;
const REG_HOURS_ALARM = 0x05;
const REG_DAY_OF_WEEK = 0x06;
const REG_DAY_OF_MONTH = 0x07;
const REG_MONTH = 0x08;
const REG_YEAR = 0x09;
const REG_STATUS_A = 0x0a;
const REG_STATUS_B = 0x0b;
const REG_STATUS_C = 0x0c;
const REG_STATUS_D = 0x0d;
/** The IBM PC/AT keeps the century (BCD) in CMOS byte 0x32; ACPI's FADT CENTURY usually names it. */
const REG_CENTURY = 0x32;

/** Status A: UIP (bit 7, read-only) clear; 32.768 kHz time base (DV=010) and 1024 Hz rate (RS=0110), the PC default. */
const STATUS_A_DEFAULT = 0x26;
const STATUS_A_WRITABLE = 0x7f;
// Status B bits.
const B_SET = 0x80; // updates frozen while the guest writes the time
const B_BINARY = 0x04; // DM: binary instead of BCD
const B_24_HOUR = 0x02;
/** 24-hour BCD: what Linux's rtc-cmos expects ("only 24-hr BCD mode supported" otherwise). */
const STATUS_B_DEFAULT = B_24_HOUR;
/** Status D: VRT, the battery-backed time is valid. */
const STATUS_D_VALID = 0x80;
/** In 12-hour mode bit 7 of the hours register means PM. */
const HOURS_PM = 0x80;

const OPEN_BUS = 0xff;

/** Calendar time as the RTC's registers hold it (hours 0-23, month 1-12, full year). */
interface ClockFields {
  seconds: number;
  minutes: number;
  hours: number;
  day: number;
  month: number;
  year: number;
}

export interface CmosRtcOptions {
  /** The host's idea of now; read on every time register access. */
  clock: () => Date;
  /** The clock's registers, shared with the other threads that serve it (CmosRtc.newState()); its own when absent. */
  state?: SharedArrayBuffer;
}

/** The alarm registers, in the order of their shared words. */
const ALARM_REGISTERS = [REG_SECONDS_ALARM, REG_MINUTES_ALARM, REG_HOURS_ALARM];

export class CmosRtc implements BusDevice {
  /** Registers and the guest's clock offset, shared by every thread that serves the clock; its lock serializes them. */
  readonly shared: SharedState;
  private readonly clock: () => Date;
  /** The offset, in the state's bytes: a float64, as it may exceed 32 bits. */
  private readonly offset: Float64Array;
  declare private index: number;
  declare private statusA: number;
  declare private statusB: number;
  /** Whether status B's SET bit froze the time registers (then frozenSeconds..frozenYear hold them, as edited). */
  declare private isFrozen: boolean;
  declare private frozenSeconds: number;
  declare private frozenMinutes: number;
  declare private frozenHours: number;
  declare private frozenDay: number;
  declare private frozenMonth: number;
  declare private frozenYear: number;
  declare private secondsAlarm: number;
  declare private minutesAlarm: number;
  declare private hoursAlarm: number;

  /** A fresh clock's shared state, to hand to every thread that serves it. */
  static newState(): SharedArrayBuffer {
    const buffer = SharedState.allocate(STATE_WORDS, 8);
    const fresh = new CmosRtc({ clock: () => new Date(), state: buffer });
    fresh.statusA = STATUS_A_DEFAULT;
    fresh.statusB = STATUS_B_DEFAULT;
    return buffer;
  }

  constructor(options: CmosRtcOptions) {
    this.shared = new SharedState(options.state ?? CmosRtc.newState(), STATE_WORDS);
    this.clock = options.clock;
    this.offset = new Float64Array(this.shared.buffer, this.shared.words.byteLength, 1);
  }

  /** The guest's clock minus the injected clock, in milliseconds. */
  private get offsetMs(): number {
    return this.offset[0];
  }

  private set offsetMs(ms: number) {
    this.offset[0] = ms;
  }

  /** While status B's SET bit is on: the time registers as frozen and edited by the guest. */
  private get frozen(): ClockFields | null {
    if (!this.isFrozen) return null;
    return { seconds: this.frozenSeconds, minutes: this.frozenMinutes, hours: this.frozenHours, day: this.frozenDay, month: this.frozenMonth, year: this.frozenYear };
  }

  private set frozen(time: ClockFields | null) {
    this.isFrozen = time !== null;
    if (!time) return;
    this.frozenSeconds = time.seconds;
    this.frozenMinutes = time.minutes;
    this.frozenHours = time.hours;
    this.frozenDay = time.day;
    this.frozenMonth = time.month;
    this.frozenYear = time.year;
  }

  private alarm(reg: number): number | undefined {
    switch (reg) {
      case REG_SECONDS_ALARM: return this.secondsAlarm;
      case REG_MINUTES_ALARM: return this.minutesAlarm;
      case REG_HOURS_ALARM: return this.hoursAlarm;
      default: return undefined;
    }
  }

  private setAlarm(reg: number, value: number): void {
    if (reg === REG_SECONDS_ALARM) this.secondsAlarm = value;
    else if (reg === REG_MINUTES_ALARM) this.minutesAlarm = value;
    else this.hoursAlarm = value;
  }

  /** Port 0x70 is write-only on the PC/AT and reads float; both ports are byte-wide. */
  read(offset: number, data: Uint8Array): void {
    data.fill(OPEN_BUS);
    if (data.length !== 1 || offset !== DATA_OFFSET) return;
    this.shared.lock();
    try {
      data[0] = this.readRegister(this.index);
    } finally {
      this.shared.unlock();
    }
  }

  write(offset: number, data: Uint8Array): void {
    if (data.length !== 1) return;
    this.shared.lock();
    try {
      if (offset === INDEX_OFFSET) this.index = data[0] & INDEX_MASK;
      else if (offset === DATA_OFFSET) this.writeRegister(this.index, data[0]);
    } finally {
      this.shared.unlock();
    }
  }

  private readRegister(reg: number): number {
    const alarm = this.alarm(reg);
    if (alarm !== undefined) return alarm;
    switch (reg) {
      case REG_STATUS_A:
        return this.statusA;
      case REG_STATUS_B:
        return this.statusB;
      case REG_STATUS_C:
        return 0; // no interrupt flags: periodic, alarm and update interrupts are not modelled
      case REG_STATUS_D:
        return STATUS_D_VALID;
    }
    const time = this.frozen ?? this.now();
    switch (reg) {
      case REG_SECONDS:
        return this.encode(time.seconds);
      case REG_MINUTES:
        return this.encode(time.minutes);
      case REG_HOURS:
        return this.encodeHours(time.hours);
      case REG_DAY_OF_WEEK:
        return dayOfWeek(time) + 1; // 1 = Sunday
      case REG_DAY_OF_MONTH:
        return this.encode(time.day);
      case REG_MONTH:
        return this.encode(time.month);
      case REG_YEAR:
        return this.encode(time.year % 100);
      case REG_CENTURY:
        return this.encode(Math.floor(time.year / 100));
      default:
        return 0;
    }
  }

  private writeRegister(reg: number, value: number): void {
    if (ALARM_REGISTERS.includes(reg)) {
      this.setAlarm(reg, value);
      return;
    }
    switch (reg) {
      case REG_STATUS_A:
        this.statusA = value & STATUS_A_WRITABLE;
        return;
      case REG_STATUS_B:
        this.writeStatusB(value);
        return;
    }
    const frozen = this.frozen;
    const time = frozen ?? this.now();
    if (!this.setField(time, reg, value)) return;
    // Without SET the clock takes the new value at once; with SET it waits for SET to clear.
    if (frozen) this.frozen = time;
    else this.commit(time);
  }

  /** Applies a guest write to one time register; false for indexes that are not settable time fields. */
  private setField(time: ClockFields, reg: number, value: number): boolean {
    switch (reg) {
      case REG_SECONDS:
        time.seconds = this.decode(value);
        return true;
      case REG_MINUTES:
        time.minutes = this.decode(value);
        return true;
      case REG_HOURS:
        time.hours = this.decodeHours(value);
        return true;
      case REG_DAY_OF_MONTH:
        time.day = this.decode(value);
        return true;
      case REG_MONTH:
        time.month = this.decode(value);
        return true;
      case REG_YEAR:
        time.year = time.year - (time.year % 100) + this.decode(value);
        return true;
      case REG_CENTURY:
        time.year = this.decode(value) * 100 + (time.year % 100);
        return true;
      default:
        return false; // the day of week follows from the date; CMOS RAM is not modelled
    }
  }

  private writeStatusB(value: number): void {
    const wasSet = (this.statusB & B_SET) !== 0;
    const isSet = (value & B_SET) !== 0;
    if (isSet && !wasSet) this.frozen = this.now();
    if (!isSet && wasSet && this.frozen) {
      this.commit(this.frozen);
      this.frozen = null;
    }
    this.statusB = value;
  }

  private now(): ClockFields {
    const at = new Date(this.clock().getTime() + this.offsetMs);
    return {
      seconds: at.getUTCSeconds(),
      minutes: at.getUTCMinutes(),
      hours: at.getUTCHours(),
      day: at.getUTCDate(),
      month: at.getUTCMonth() + 1,
      year: at.getUTCFullYear(),
    };
  }

  /** Makes `time` the guest's present. Out-of-range fields roll over as Date.UTC does; nonsense is ignored. */
  private commit(time: ClockFields): void {
    const ms = Date.UTC(time.year, time.month - 1, time.day, time.hours, time.minutes, time.seconds);
    if (Number.isFinite(ms)) this.offsetMs = ms - this.clock().getTime();
  }

  /**
   * Registers and the guest's clock offset, as plain data (snapshots). The offset is from host time, so a
   * restored guest's wall clock follows the host's, as a real RTC keeps running while the machine is off.
   */
  saveState(): SavedState {
    this.shared.lock();
    try {
      return {
        index: this.index, statusA: this.statusA, statusB: this.statusB, offsetMs: this.offsetMs, frozen: this.frozen,
        alarms: ALARM_REGISTERS.map((reg) => [reg, this.alarm(reg)!]),
      };
    } finally {
      this.shared.unlock();
    }
  }

  /** Takes back saveState()'s data, checked first, so a bad field changes nothing. */
  restoreState(saved: unknown): void {
    const r = new StateReader(saved, "rtc");
    const index = r.byte("index");
    const statusA = r.byte("statusA");
    const statusB = r.byte("statusB");
    const offsetMs = r.int("offsetMs", -(2 ** 52), 2 ** 52);
    const frozenRaw = r.raw("frozen");
    let frozen: ClockFields | null = null;
    if (frozenRaw !== null) {
      const f = new StateReader(frozenRaw, "rtc frozen time");
      frozen = { seconds: f.int("seconds", 0, 255), minutes: f.int("minutes", 0, 255), hours: f.int("hours", 0, 255), day: f.int("day", 0, 255), month: f.int("month", 0, 255), year: f.int("year", 0, 9999) };
    }
    const alarms = r.array("alarms", ALARM_REGISTERS.length).map((e) => {
      if (!Array.isArray(e) || e.length !== 2 || !ALARM_REGISTERS.includes(e[0]) || !Number.isInteger(e[1]) || e[1] < 0 || e[1] > 0xff) throw new Error("rtc: saved \"alarms\" entries must be [alarm register, byte]");
      return e as [number, number];
    });
    this.shared.lock();
    try {
      this.index = index;
      this.statusA = statusA;
      this.statusB = statusB;
      this.offsetMs = offsetMs;
      this.frozen = frozen;
      for (const [reg, v] of alarms) this.setAlarm(reg, v);
    } finally {
      this.shared.unlock();
    }
  }

  private get binary(): boolean {
    return (this.statusB & B_BINARY) !== 0;
  }

  private encode(value: number): number {
    return this.binary ? value : toBcd(value);
  }

  private decode(value: number): number {
    return this.binary ? value : fromBcd(value);
  }

  private encodeHours(hours: number): number {
    if (this.statusB & B_24_HOUR) return this.encode(hours);
    return this.encode(hours % 12 || 12) | (hours >= 12 ? HOURS_PM : 0);
  }

  private decodeHours(value: number): number {
    if (this.statusB & B_24_HOUR) return this.decode(value);
    return (this.decode(value & ~HOURS_PM) % 12) + (value & HOURS_PM ? 12 : 0);
  }
}

function dayOfWeek(time: ClockFields): number {
  return new Date(Date.UTC(time.year, time.month - 1, time.day)).getUTCDay();
}

function toBcd(value: number): number {
  return ((Math.floor(value / 10) % 10) << 4) | value % 10;
}

function fromBcd(value: number): number {
  return (value >> 4) * 10 + (value & 0x0f);
}

/** The shared state's layout: the lock, then the registers (sharedFields); the offset follows in the bytes. */
const REGISTER_END = sharedFields(CmosRtc, {
  index: "int", statusA: "int", statusB: "int", isFrozen: "bool", frozenSeconds: "int", frozenMinutes: "int", frozenHours: "int",
  frozenDay: "int", frozenMonth: "int", frozenYear: "int", secondsAlarm: "int", minutesAlarm: "int", hoursAlarm: "int",
});
/** Rounded up to an even count: the float64 offset after the words must be 8-byte aligned. */
const STATE_WORDS = (REGISTER_END + 1) & ~1;
