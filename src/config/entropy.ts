/** EntropyDevice (firecracker-api.yaml): a virtio-rng device. */
import { optionalRateLimiter, type RateLimiterConfig } from "./rate-limiter.js";
import { objectSchema, type ObjectSchema } from "./schema.js";

export interface EntropyConfig {
  /** Accepted and stored, not enforced. */
  rate_limiter?: RateLimiterConfig;
}

export const entropySchema: ObjectSchema<EntropyConfig> = objectSchema<EntropyConfig>("EntropyDevice", {
  rate_limiter: optionalRateLimiter,
});
