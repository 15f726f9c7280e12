/**
 * The kernel command line: a builder that keeps it valid, and a writer into guest memory.
 *
 * Linux splits the line at unquoted spaces and lets a double-quoted value contain spaces
 * (kernel/params.c, next_arg); there is no escape for a quote inside a value. The line is a
 * NUL-terminated string whose size, NUL included, must fit the kernel's buffer
 * (COMMAND_LINE_SIZE, announced as cmdline_size + 1 by boot protocol >= 2.06, boot.rst).
 */

import type { GuestMemory } from "../memory/guest-memory.js";
import { CMDLINE_MAX_SIZE } from "../arch/x86/layout.js";

export class CmdlineError extends Error {
  override readonly name = "CmdlineError";
}

/** Printable ASCII only: a NUL would end the line early, control bytes are never meant. */
function checkCharacters(text: string, what: string): void {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) {
      const shown = c === 0 ? "NUL" : `0x${c.toString(16).padStart(2, "0")}`;
      throw new CmdlineError(`${what} has a ${shown} character at position ${i}; only printable ASCII is allowed`);
    }
  }
}

/** Checks characters and quoting of one or more formatted arguments. */
function checkArguments(text: string): void {
  checkCharacters(text, "kernel command line");
  if ((text.match(/"/g)?.length ?? 0) % 2 !== 0) throw new CmdlineError(`kernel command line has an unbalanced double quote: ${text}`);
}

/**
 * Checks that `text` can be passed as a command line in a buffer of `capacity` bytes (NUL
 * included); returns its encoding with the terminating NUL.
 */
export function encodeCmdline(text: string, capacity = CMDLINE_MAX_SIZE): Uint8Array {
  checkArguments(text);
  if (text.length + 1 > capacity) {
    throw new CmdlineError(`kernel command line is ${text.length} bytes; the kernel accepts at most ${capacity - 1}`);
  }
  const bytes = new Uint8Array(text.length + 1);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

/** Writes `text` NUL-terminated at `addr`; returns the bytes written (NUL included). */
export function writeCmdline(mem: GuestMemory, addr: number, text: string, capacity = CMDLINE_MAX_SIZE): number {
  const bytes = encodeCmdline(text, capacity);
  mem.write(addr, bytes);
  return bytes.length;
}

/** The arguments of a command line, split as the kernel does: at spaces outside double quotes (params.c, next_arg). */
export function splitCmdline(text: string): string[] {
  return text.match(/(?:[^\s"]+|"[^"]*")+/g) ?? [];
}

/** What an argument sets: its key (`root` for `root=/dev/vda`); `ro` and `rw` both set the root mount mode. */
function settingOf(arg: string): string {
  const key = arg.split("=", 1)[0];
  return key === "ro" || key === "rw" ? "ro|rw" : key;
}

/**
 * Those of `defaults` that set something `line` does not set yet: what the user wrote wins (their own `root=` or
 * `clearcpuid=`), and nothing the line already says is said twice.
 */
export function missingArgs(line: string, defaults: readonly string[]): string[] {
  const set = new Set(splitCmdline(line).map(settingOf));
  return defaults.filter((arg) => !set.has(settingOf(arg)));
}

/** `line` with the missing ones of `defaults` appended (see missingArgs). */
export function withDefaultArgs(line: string, defaults: readonly string[]): string {
  return [line.trim(), ...missingArgs(line, defaults)].filter((part) => part !== "").join(" ");
}

/** Builds a command line argument by argument, rejecting anything the kernel would misparse. */
export class Cmdline {
  private readonly args: string[] = [];

  /** `capacity`: buffer size in bytes, NUL included. */
  constructor(readonly capacity = CMDLINE_MAX_SIZE) {}

  /** Adds `key` or `key=value`; a value with spaces is double-quoted. */
  add(key: string, value?: string): this {
    checkCharacters(key, `command line key "${key}"`);
    if (key === "" || /[\s="]/.test(key)) throw new CmdlineError(`command line key "${key}" must be non-empty, without spaces, '=' or '"'`);
    if (value === undefined) return this.push(key);
    checkCharacters(value, `value of command line key "${key}"`);
    if (value.includes('"')) throw new CmdlineError(`value of command line key "${key}" contains '"', which the kernel cannot parse`);
    return this.push(/\s/.test(value) || value === "" ? `${key}="${value}"` : `${key}=${value}`);
  }

  /** Adds already-formatted arguments (e.g. user boot args), checked as a whole. */
  addRaw(args: string): this {
    const trimmed = args.trim();
    if (trimmed === "") return this;
    checkArguments(trimmed);
    return this.push(trimmed);
  }

  /** Adds each of `args` that sets something the line does not set yet (see missingArgs). */
  addDefaults(args: readonly string[]): this {
    for (const arg of missingArgs(this.toString(), args)) this.addRaw(arg);
    return this;
  }

  private push(arg: string): this {
    const next = [...this.args, arg].join(" ");
    if (next.length + 1 > this.capacity) {
      throw new CmdlineError(`adding "${arg}" makes the command line ${next.length} bytes; the limit is ${this.capacity - 1}`);
    }
    this.args.push(arg);
    return this;
  }

  toString(): string {
    return this.args.join(" ");
  }
}
