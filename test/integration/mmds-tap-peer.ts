/**
 * Run inside a network namespace by mmds-tap.test.ts: serves MMDS on a tap whose other end is this namespace's
 * own Linux TCP/IP stack, then asks it over HTTP as a guest would (the host kernel plays the guest). Prints one
 * JSON line with what it got. Frames pass as the net device passes them: with the 12-byte virtio_net_hdr.
 */
import { request } from "node:http";
import { MmdsService } from "../../src/devices/mmds/index.js";
import { readSegments, writeSegments } from "../../src/devices/virtio/queue/chain-buffers.js";
import { TapBackend } from "../../src/devices/virtio/net/tap.js";
import { guestMemoryOver, mapAnonymous } from "../../src/memory/host-mapping.js";

const HDR = 12;
const [tapName, dataJson, version = "V2"] = process.argv.slice(2);
const tap = TapBackend.open(tapName);
// Real host memory: the tap reads and writes it with readv/writev.
const mem = guestMemoryOver([{ guestAddr: 0, size: 0x40000, hostAddr: mapAnonymous(0x40000) }]);
const service = new MmdsService({ version: version === "V1" ? "V1" : "V2", imdsCompat: false, ipv4Address: "169.254.169.254", data: dataJson });
const stack = service.newNetworkStack();
let leaked = 0;

/** One pass: frames from the kernel to the stack (anything else is counted: it would have gone to the tap), replies back. */
function pump(): void {
  for (let i = 0; i < 256; i++) {
    const n = tap.receive(mem, [{ addr: 0, len: 0x20000 }]);
    if (n === null) break;
    const frame = readSegments(mem, [{ addr: HDR, len: n - HDR }]);
    if (stack.isMmdsFrame(frame.subarray(0, 42))) stack.detour(frame);
    else leaked++;
  }
  for (let f = stack.nextFrame(); f !== null; f = stack.nextFrame()) {
    const packet = new Uint8Array(HDR + f.length);
    packet.set(f, HDR);
    writeSegments(mem, [{ addr: 0x20000, len: packet.length }], packet);
    tap.send(mem, [{ addr: 0x20000, len: packet.length }]);
  }
}
const pumping = setInterval(pump, 1);

function ask(method: string, path: string, headers: Record<string, string>): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "169.254.169.254", port: 80, method, path, headers, timeout: 5000, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), headers: res.headers }));
    });
    req.on("timeout", () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on("error", reject);
    req.end();
  });
}

/** Lets the connections' FINs and last ACKs pass before counting what is left. */
async function drain(): Promise<void> {
  clearInterval(pumping);
  for (let i = 0; i < 50; i++) {
    pump();
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** V1: a plain GET, no session token, as clients of the first IMDS do. */
async function askV1(): Promise<object> {
  const value = await ask("GET", "/latest/meta-data/ami-id", {});
  await drain();
  return { value, leaked, metrics: service.metrics, open: stack.connectionCount };
}

async function askV2(): Promise<object> {
  const token = await ask("PUT", "/latest/api/token", { "X-metadata-token-ttl-seconds": "60" });
  const value = await ask("GET", "/latest/meta-data/ami-id", { "X-metadata-token": token.body });
  const big = await ask("GET", "/big", { "X-metadata-token": token.body, Accept: "application/json" });
  const listing = await ask("GET", "/latest/", { "X-metadata-token": token.body });
  const noToken = await ask("GET", "/latest/meta-data/ami-id", {});
  await drain();
  return { token, value, bigLength: big.body.length, bigOk: big.body === JSON.stringify("y".repeat(20000)), listing, noToken, leaked, metrics: service.metrics, open: stack.connectionCount };
}

try {
  process.stdout.write(`${JSON.stringify(await (version === "V1" ? askV1() : askV2()))}\n`);
} finally {
  clearInterval(pumping);
  tap.close();
}
