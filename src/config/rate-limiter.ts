/** RateLimiter / TokenBucket (firecracker-api.yaml definitions): accepted and stored, not enforced. */
import { integer, nested, objectSchema, optional, required, type ObjectSchema } from "./schema.js";

export interface TokenBucketConfig {
  /** Total number of tokens the bucket holds. */
  size: number;
  /** Initial extra burst of tokens. */
  one_time_burst?: number;
  /** Milliseconds to refill the bucket from empty. */
  refill_time: number;
}

export interface RateLimiterConfig {
  /** Bucket whose tokens are bytes. */
  bandwidth?: TokenBucketConfig;
  /** Bucket whose tokens are operations. */
  ops?: TokenBucketConfig;
}

/** The yaml says int64 minimum 0; JSON numbers are exact only up to 2^53 - 1. */
const tokenCount = integer(0, Number.MAX_SAFE_INTEGER, "u64");

export const tokenBucketSchema: ObjectSchema<TokenBucketConfig> = objectSchema<TokenBucketConfig>("TokenBucket", {
  size: required(tokenCount),
  one_time_burst: optional(tokenCount),
  refill_time: required(tokenCount),
});

export const rateLimiterSchema: ObjectSchema<RateLimiterConfig> = objectSchema<RateLimiterConfig>("RateLimiter", {
  bandwidth: optional(nested(tokenBucketSchema)),
  ops: optional(nested(tokenBucketSchema)),
});

/** Shorthand for the optional `rate_limiter`-style properties of devices. */
export const optionalRateLimiter = optional(nested(rateLimiterSchema));