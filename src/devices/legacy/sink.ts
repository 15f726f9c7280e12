/**
 * Ports that must answer but do nothing: 0x80 (the POST-code port, which Linux's io_delay writes to
 * slow down port I/O) and 0xed (the alternative delay port, `io_delay=0xed`). Without a device there,
 * each access would be an unclaimed-port warning. Writes are counted and dropped.
 *
 * Reads return 0xff, what an ISA bus answers when no device drives the data lines (pull-ups). Real
 * chipsets differ for 0x80 (some latch the last POST code); QEMU's port-0x80 device also answers 0xff,
 * and Linux never reads either port.
 */
import type { BusDevice } from "../bus.js";

export const POST_CODE_PORT = 0x80;
export const ALTERNATE_IO_DELAY_PORT = 0xed;

const OPEN_BUS = 0xff;

export class PortSink implements BusDevice {
  /** Guest writes seen (each one a VM exit): a cheap counter for exit-rate benchmarks. */
  writes = 0;

  read(_offset: number, data: Uint8Array): void {
    data.fill(OPEN_BUS);
  }

  write(): void {
    this.writes++;
  }
}
