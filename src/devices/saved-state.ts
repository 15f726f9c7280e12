/**
 * Checked reading of a device's saved state (plain JSON data from a snapshot file). The snapshot's checksum
 * already rules out corruption; these checks catch a file written by a different model version, so a bad
 * field is a one-line error naming the device and field, never a device in a state it cannot be in.
 */
export class DeviceStateError extends Error {
  override readonly name = "DeviceStateError";
}

export type SavedState = Readonly<Record<string, unknown>>;

export class StateReader {
  constructor(private readonly state: unknown, private readonly device: string) {
    if (typeof state !== "object" || state === null || Array.isArray(state)) throw new DeviceStateError(`${device}: saved state is not an object`);
  }

  private field(name: string): unknown {
    const v = (this.state as SavedState)[name];
    if (v === undefined) throw new DeviceStateError(`${this.device}: saved state lacks "${name}"`);
    return v;
  }

  int(name: string, min: number, max: number): number {
    const v = this.field(name);
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) throw new DeviceStateError(`${this.device}: saved "${name}" must be an integer in [${min}, ${max}]`);
    return v;
  }

  byte(name: string): number {
    return this.int(name, 0, 0xff);
  }

  bool(name: string): boolean {
    const v = this.field(name);
    if (typeof v !== "boolean") throw new DeviceStateError(`${this.device}: saved "${name}" must be true or false`);
    return v;
  }

  /** A list of bytes no longer than `max`. */
  bytes(name: string, max: number): number[] {
    const v = this.field(name);
    if (!Array.isArray(v) || v.length > max || !v.every((b) => Number.isInteger(b) && b >= 0 && b <= 0xff)) {
      throw new DeviceStateError(`${this.device}: saved "${name}" must be at most ${max} bytes`);
    }
    return v as number[];
  }

  /** A bigint saved as a decimal or 0x string (JSON has no 64-bit integers). */
  u64(name: string): bigint {
    const v = this.field(name);
    if (typeof v !== "string" || !/^(0x[0-9a-f]{1,16}|[0-9]{1,20})$/i.test(v) || BigInt(v) > 0xffff_ffff_ffff_ffffn) throw new DeviceStateError(`${this.device}: saved "${name}" must be a 64-bit integer string`);
    return BigInt(v);
  }

  array(name: string, max: number): unknown[] {
    const v = this.field(name);
    if (!Array.isArray(v) || v.length > max) throw new DeviceStateError(`${this.device}: saved "${name}" must be a list of at most ${max}`);
    return v;
  }

  raw(name: string): unknown {
    return this.field(name);
  }
}
