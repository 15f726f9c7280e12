/**
 * What a user meets when things go wrong, on a real /dev/kvm with the `echo` test guest in API mode:
 * - a failed InstanceStart (its drive file vanished) answers a one-line fault_message and releases everything it
 *   opened (the process's fd count is the same after ten failed starts);
 * - Ctrl+Alt+Del into a guest that never reads its keyboard fills the i8042's buffer: the request that does not fit
 *   is refused with a 400 and the VM runs on.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { requestOverSocket } from "../../src/api/api-client.js";
import { buildTestGuest } from "../guests/build.js";
import { kvmSkipReason } from "./kvm-available.js";
import { startPetasan, type Running } from "./petasan-process.js";
import { faultOf, waitForApi } from "./api-process.js";

const skip = kvmSkipReason() ?? false;
const PROCESS_TIMEOUT_MS = 60_000;
const FAILED_STARTS = 10;

const workDir = mkdtempSync(path.join(tmpdir(), "petasan-failures-"));
const children: Running[] = [];
after(() => {
  for (const child of children) child.child.kill("SIGKILL");
  rmSync(workDir, { recursive: true, force: true });
});

async function apiPetasan(name: string) {
  const socketPath = path.join(workDir, `${name}.sock`);
  const petasan = startPetasan(["--api-sock", socketPath], PROCESS_TIMEOUT_MS);
  children.push(petasan);
  await waitForApi(socketPath, petasan);
  const api = (method: string, url: string, body?: object) => requestOverSocket(socketPath, method, url, body);
  return { petasan, api };
}

const openFds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

test("a failed InstanceStart says why in one line and leaks no fd", { skip }, async () => {
  const kernel = await buildTestGuest("echo");
  const { petasan, api } = await apiPetasan("failed-start");
  const image = path.join(workDir, "vanishing.img");
  writeFileSync(image, Buffer.alloc(64 * 1024));
  assert.equal((await api("PUT", "/boot-source", { kernel_image_path: kernel })).status, 204);
  assert.equal((await api("PUT", "/drives/scratch", { drive_id: "scratch", path_on_host: image, is_root_device: false, is_read_only: false })).status, 204);
  // The file goes away between configuration and start, as a file on a host can.
  rmSync(image);

  const pid = petasan.child.pid!;
  // The first start uses up the warm threads API mode starts ahead (their event loops hold fds): count after it.
  assert.equal((await api("PUT", "/actions", { action_type: "InstanceStart" })).status, 400);
  const fdsBefore = openFds(pid);
  for (let i = 0; i < FAILED_STARTS; i++) {
    const r = await api("PUT", "/actions", { action_type: "InstanceStart" });
    assert.equal(r.status, 400, r.text);
    const fault = faultOf(r);
    assert.match(fault, /vanishing\.img/, "the fault names the file");
    assert.doesNotMatch(fault, /\n|\s+at .*\(.*:\d+:\d+\)/, `one line, no stack trace: ${fault}`);
  }
  // The API server may still be closing the socket of an earlier request when the first count is taken: one fd
  // fewer afterwards is that socket gone, while a leak would add one per failed start. Likewise the last request's
  // socket may still be open at the second count (seen here under load, gone within 300 ms): wait up to 1 s for it.
  let fdsAfter = openFds(pid);
  for (let i = 0; i < 50 && fdsAfter > fdsBefore; i++) {
    await new Promise((r) => setTimeout(r, 20));
    fdsAfter = openFds(pid);
  }
  assert.ok(fdsAfter <= fdsBefore, `fds after ${FAILED_STARTS} failed starts: ${fdsAfter}, before: ${fdsBefore}`);
  assert.equal(((await api("GET", "/")).json as { state: string }).state, "Not started");
});

test("Ctrl+Alt+Del into a full i8042 buffer is refused with a 400 and the VM runs on", { skip }, async () => {
  const kernel = await buildTestGuest("echo");
  const { petasan, api } = await apiPetasan("ctrl-alt-del");
  assert.equal((await api("PUT", "/boot-source", { kernel_image_path: kernel })).status, 204);
  assert.equal((await api("PUT", "/actions", { action_type: "InstanceStart" })).status, 204);
  await petasan.waitFor("echo: ready");

  // The echo guest never reads its keyboard: the 16-byte buffer fills after a few presses.
  const statuses: number[] = [];
  let refusal = "";
  for (let i = 0; i < 10 && refusal === ""; i++) {
    const r = await api("PUT", "/actions", { action_type: "SendCtrlAltDel" });
    statuses.push(r.status);
    if (r.status !== 204) refusal = faultOf(r);
  }
  assert.ok(statuses.slice(0, -1).every((s) => s === 204) && statuses.at(-1) === 400, `statuses: ${statuses}`);
  assert.match(refusal, /buffer is full/);
  // The VM is alive: its state says so and the guest still echoes.
  assert.equal(((await api("GET", "/")).json as { state: string }).state, "Running");
  petasan.child.stdin!.write("ok");
  await petasan.waitFor("OK");
  petasan.child.stdin!.write("q");
  assert.equal((await petasan.finished).code, 0);
});
