/** Ethernet MAC addresses for virtio-net's config space. */
import { randomBytes } from "node:crypto";

export const MAC_BYTES = 6;
/** IEEE 802 first-octet bits: I/G (group address) and U/L (locally administered). */
const GROUP_BIT = 0x01;
const LOCAL_BIT = 0x02;

export class MacAddressError extends Error {
  override readonly name = "MacAddressError";
}

/** Parses "aa:bb:cc:dd:ee:ff"; refuses anything else and multicast addresses (a NIC needs a unicast one). */
export function parseMac(text: string): Uint8Array {
  const parts = text.split(":");
  if (parts.length !== MAC_BYTES || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) {
    throw new MacAddressError(`MAC address "${text}" is not six colon-separated hex bytes`);
  }
  const mac = Uint8Array.from(parts, (p) => parseInt(p, 16));
  if (mac[0] & GROUP_BIT) throw new MacAddressError(`MAC address "${text}" is a multicast address`);
  return mac;
}

/** A random locally administered unicast MAC. */
export function generateMac(): Uint8Array {
  const mac = new Uint8Array(randomBytes(MAC_BYTES));
  mac[0] = (mac[0] & ~GROUP_BIT) | LOCAL_BIT;
  return mac;
}

export function formatMac(mac: Uint8Array): string {
  return [...mac].map((b) => b.toString(16).padStart(2, "0")).join(":");
}
