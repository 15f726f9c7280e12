/** NetworkInterface / PartialNetworkInterface (firecracker-api.yaml; Firecracker vmm_config/net.rs). */
import { optionalRateLimiter, type RateLimiterConfig } from "./rate-limiter.js";
import {
  ConfigError,
  integer,
  nonEmptyString,
  objectSchema,
  optional,
  required,
  resourceId,
  string,
  type Check,
  type ObjectSchema,
} from "./schema.js";

export interface NetworkInterfaceConfig {
  iface_id: string;
  /** Name of the host TAP device. */
  host_dev_name: string;
  /** "xx:xx:xx:xx:xx:xx", stored in lower case. */
  guest_mac?: string;
  /** Advertised with VIRTIO_NET_F_MTU when set. */
  mtu?: number;
  /** Accepted and stored, not enforced. */
  rx_rate_limiter?: RateLimiterConfig;
  tx_rate_limiter?: RateLimiterConfig;
}

/** PATCH /network-interfaces/{id} after boot: replace the (stored) rate limiters. */
export interface NetworkInterfaceUpdate {
  iface_id: string;
  rx_rate_limiter?: RateLimiterConfig;
  tx_rate_limiter?: RateLimiterConfig;
}

/** Six colon-separated octets, as Firecracker's MacAddr parses them. */
const MAC_ADDRESS = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

const macAddress: Check<string> = (value, path) => {
  const text = string(value, path);
  if (!MAC_ADDRESS.test(text)) throw new ConfigError(path, 'must be a MAC address like "06:00:ac:10:00:02"');
  return text.toLowerCase();
};

export const networkInterfaceSchema: ObjectSchema<NetworkInterfaceConfig> = objectSchema<NetworkInterfaceConfig>(
  "NetworkInterface",
  {
    iface_id: required(resourceId),
    host_dev_name: required(nonEmptyString),
    guest_mac: optional(macAddress),
    // The yaml's bounds: 68 is the IPv4 minimum MTU (RFC 791), 65535 the virtio-net config field's u16 max.
    mtu: optional(integer(68, 65535, "u16")),
    rx_rate_limiter: optionalRateLimiter,
    tx_rate_limiter: optionalRateLimiter,
  },
);

export const networkInterfaceUpdateSchema: ObjectSchema<NetworkInterfaceUpdate> = objectSchema<NetworkInterfaceUpdate>(
  "PartialNetworkInterface",
  {
    iface_id: required(resourceId),
    rx_rate_limiter: optionalRateLimiter,
    tx_rate_limiter: optionalRateLimiter,
  },
);
