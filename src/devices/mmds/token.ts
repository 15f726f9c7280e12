/**
 * MMDS V2 session tokens (Firecracker mmds/token.rs): a token is the base64 of a 12-byte random IV, the
 * token's expiry (u64 little-endian milliseconds of the monotonic clock) sealed with AES-256-GCM under a
 * key drawn at random for this VM, and the 16-byte tag. Only this VM's key opens it, and a token can be
 * neither forged nor given a later expiry without it.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

export const MIN_TOKEN_TTL_SECONDS = 1;
export const MAX_TOKEN_TTL_SECONDS = 21600;
const IV_LEN = 12;
const PAYLOAD_LEN = 8;
const TAG_LEN = 16;
/** Longer strings are refused before any decoding (Firecracker's TOKEN_LENGTH_LIMIT). */
const TOKEN_LENGTH_LIMIT = 70;

export function invalidTtlMessage(ttl: number | string): string {
  return `Invalid time to live value provided for token: ${ttl}. Please provide a value between ${MIN_TOKEN_TTL_SECONDS} and ${MAX_TOKEN_TTL_SECONDS}.`;
}

export class TokenAuthority {
  private readonly key = randomBytes(32);

  /**
   * @param now milliseconds on a monotonic clock (injected for tests)
   * @param aad Firecracker's additional authenticated data, "microvmid=<id>"
   */
  constructor(private readonly now: () => number = () => performance.now(), private readonly aad = Buffer.alloc(0)) {}

  /** A token valid for `ttlSeconds`; throws RangeError with Firecracker's message outside 1..21600. */
  generate(ttlSeconds: number): string {
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < MIN_TOKEN_TTL_SECONDS || ttlSeconds > MAX_TOKEN_TTL_SECONDS) {
      throw new RangeError(invalidTtlMessage(ttlSeconds));
    }
    const expiry = Buffer.alloc(PAYLOAD_LEN);
    expiry.writeBigUInt64LE(BigInt(Math.floor(this.now() + ttlSeconds * 1000)));
    const iv = randomBytes(IV_LEN);
    const cipher = createCipheriv("aes-256-gcm", this.key, iv);
    cipher.setAAD(this.aad);
    const sealed = Buffer.concat([cipher.update(expiry), cipher.final()]);
    return Buffer.concat([iv, sealed, cipher.getAuthTag()]).toString("base64");
  }

  /** True for a token this authority made that has not expired. */
  isValid(token: string): boolean {
    if (token.length > TOKEN_LENGTH_LIMIT || !/^[A-Za-z0-9+/]*={0,2}$/.test(token)) return false;
    const raw = Buffer.from(token, "base64");
    if (raw.length !== IV_LEN + PAYLOAD_LEN + TAG_LEN) return false;
    try {
      const decipher = createDecipheriv("aes-256-gcm", this.key, raw.subarray(0, IV_LEN), { authTagLength: TAG_LEN });
      decipher.setAAD(this.aad);
      decipher.setAuthTag(raw.subarray(IV_LEN + PAYLOAD_LEN));
      const expiry = Buffer.concat([decipher.update(raw.subarray(IV_LEN, IV_LEN + PAYLOAD_LEN)), decipher.final()]);
      return Number(expiry.readBigUInt64LE()) > this.now();
    } catch {
      return false;
    }
  }
}
