/** What crosses between the VMM controller (main thread) and the device thread. */
import type { MessagePort } from "node:worker_threads";
import type { MemoryRegionDescriptor } from "../../memory/guest-memory.js";
import type { LogLevel } from "../logger.js";

export interface DeviceThreadVcpu {
  id: number;
  runAddr: bigint;
  mmapSize: number;
  control: SharedArrayBuffer;
}

export interface DeviceThreadData {
  vmFd: number;
  memory: MemoryRegionDescriptor[];
  vcpus: DeviceThreadVcpu[];
  /** eventfd vCPUs write when they post an exit. */
  exitEventFd: number;
  /** eventfd the controller writes after posting on `port`, to wake epoll_wait. */
  controlEventFd: number;
  /** Requests from the controller, read synchronously (receiveMessageOnPort) when controlEventFd fires. */
  port: MessagePort;
  /** Where the guest's COM1 output goes, or null to discard it. */
  serialOutputFd: number | null;
  log: { fd: number; level: LogLevel };
}

export type DeviceThreadRequest =
  | { kind: "serial-input"; bytes: Uint8Array }
  | { kind: "ctrl-alt-del" }
  | { kind: "metrics"; id: number }
  | { kind: "stop" };

export type DeviceThreadEvent =
  | { kind: "ready" }
  /** The guest pulsed the reset line (i8042): a reboot, which ends the VMM as in Firecracker. */
  | { kind: "guest-reset" }
  | { kind: "metrics"; id: number; metrics: Record<string, unknown> }
  | { kind: "failed"; error: string }
  | { kind: "stopped" };
