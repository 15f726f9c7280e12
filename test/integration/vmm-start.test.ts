/**
 * Vmm.start() starts the vCPU threads beside the device thread rather than after it (each is a fresh worker that
 * takes tens to hundreds of ms to boot), holding them out of the guest until the device thread is ready. A user
 * device whose module takes seconds to load keeps the device thread from being ready that long, which makes the
 * order visible: the vCPU thread reaches its held (paused) state, with no exit taken, while start() still waits.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { buildVm } from "../../src/vmm/builder.js";
import { DEFAULT_MACHINE_CONFIG } from "../../src/config/machine-config.js";
import { VcpuState } from "../../src/vmm/vcpu/control.js";
import type { VmmParts } from "../../src/vmm/vmm.js";
import { buildTestGuest } from "../guests/build.js";
import { kvmSkipReason } from "./kvm-available.js";

const skip = kvmSkipReason() ?? false;
/** How long the slow device's module takes to load: longer than a vCPU worker takes to start on a loaded host. */
const SLOW_LOAD_MS = 4000;

const dir = mkdtempSync(path.join(tmpdir(), "petasan-vmm-start-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("vCPU threads start while the device thread starts, held out of the guest until it is ready", { skip }, async () => {
  const module = path.join(dir, "slow-device.mjs");
  writeFileSync(module, `await new Promise((r) => setTimeout(r, ${SLOW_LOAD_MS}));\nexport default () => ({ read(_o, d) { d.fill(0); }, write() {} });\n`);
  const vmm = await buildVm(
    { "boot-source": { kernel_image_path: await buildTestGuest("realmode") }, "machine-config": { ...DEFAULT_MACHINE_CONFIG }, drives: [], "network-interfaces": [] },
    { serialOutputFd: null, log: { fd: 2, level: "Warning" }, userDevices: [{ module: pathToFileURL(module).href, bus: "pio", base: 0x700, length: 4, name: "slow" }] },
  );
  const vcpu = (vmm as unknown as { parts: VmmParts }).parts.vcpus[0];
  let started = false;
  const starting = vmm.start().then(() => (started = true));
  const deadline = Date.now() + SLOW_LOAD_MS - 500;
  while (vcpu.control.state !== VcpuState.Paused && Date.now() < deadline) await sleep(10);
  assert.equal(started, false, "start() waits for the device thread");
  assert.equal(vcpu.control.state, VcpuState.Paused, "the vCPU thread started and waits, held, before the device thread is ready");
  assert.ok(Object.values(vmm.vcpuMetrics()[0]).every((n) => n === 0), "no exit before the device thread is ready");
  await starting;
  const exit = await vmm.whenExited();
  assert.equal(exit.reason, "guest-reset", exit.message);
});
