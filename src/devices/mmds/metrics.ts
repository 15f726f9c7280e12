/** Firecracker's MmdsMetrics (logger/metrics.rs), one set per VM, shared by every interface that detours to MMDS. */
export interface MmdsMetrics {
  /** Frames taken from the guest for MMDS. */
  rx_accepted: number;
  /** Frames or segments MMDS could not handle. */
  rx_accepted_err: number;
  /** Odd but handled input: non-TCP IPv4 to the MMDS address, out-of-order or out-of-window segments. */
  rx_accepted_unusual: number;
  rx_bad_eth: number;
  rx_invalid_token: number;
  rx_no_token: number;
  /** Segments handled by the TCP side. */
  rx_count: number;
  tx_bytes: number;
  tx_count: number;
  tx_errors: number;
  tx_frames: number;
  connections_created: number;
  connections_destroyed: number;
}

export function newMmdsMetrics(): MmdsMetrics {
  return {
    rx_accepted: 0, rx_accepted_err: 0, rx_accepted_unusual: 0, rx_bad_eth: 0, rx_invalid_token: 0, rx_no_token: 0, rx_count: 0,
    tx_bytes: 0, tx_count: 0, tx_errors: 0, tx_frames: 0, connections_created: 0, connections_destroyed: 0,
  };
}
