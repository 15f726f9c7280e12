/** The virtio devices' logger (levels error/warn/info/debug) over the VMM's (Error/Warning/Info/Debug). */
import type { Logger as VirtioLogger } from "../devices/virtio/device.js";
import type { Logger } from "./logger.js";

const LEVELS = { error: "Error", warn: "Warning", info: "Info", debug: "Debug" } as const;

export function virtioLogger(logger: Logger): VirtioLogger {
  return (level, msg) => logger(LEVELS[level], msg);
}
