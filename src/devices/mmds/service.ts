/**
 * One MMDS per VM, on the device thread: the guest's copy of the data store, the V2 token authority and
 * the metrics, shared by the network stacks of every interface listed in MmdsConfig.network_interfaces.
 */
import { MmdsMetadata, type MmdsVersion } from "./metadata.js";
import { newMmdsMetrics, type MmdsMetrics } from "./metrics.js";
import { MmdsNetworkStack } from "./network-stack.js";
import { TokenAuthority } from "./token.js";
import { ipv4ToNumber } from "./frames.js";

export interface MmdsServiceOptions {
  version: MmdsVersion;
  imdsCompat: boolean;
  /** Dotted quad. */
  ipv4Address: string;
  /** The data store as JSON text. */
  data: string;
  /** Firecracker binds tokens to the microVM id (token.rs set_aad: "microvmid=<id>"). */
  instanceId?: string;
}

export class MmdsService {
  readonly metadata: MmdsMetadata;
  readonly tokens: TokenAuthority;
  readonly metrics: MmdsMetrics = newMmdsMetrics();
  private readonly ipv4: number;

  constructor(options: MmdsServiceOptions) {
    this.metadata = new MmdsMetadata(options.version, options.imdsCompat);
    this.metadata.setDataText(options.data);
    this.tokens = new TokenAuthority(undefined, Buffer.from(options.instanceId === undefined ? "" : `microvmid=${options.instanceId}`));
    this.ipv4 = ipv4ToNumber(options.ipv4Address.split(".").map(Number));
  }

  /** A network stack for one interface (each has its own connections; the data and tokens are shared). */
  newNetworkStack(): MmdsNetworkStack {
    return new MmdsNetworkStack({ ipv4Address: this.ipv4, http: { metadata: this.metadata, tokens: this.tokens, metrics: this.metrics } });
  }
}
