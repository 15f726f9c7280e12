/**
 * Run inside the network namespace of net-rate-limit.test.ts (`ip netns exec NS node this.js MODE TAP COUNT`): the
 * host's end of the guest's tap, through an AF_PACKET socket (packet(7)) bound to the tap for the test's ethertype
 * only, so nothing else on the interface is seen or sent.
 *   count COUNT: prints "ready", then reads COUNT frames the guest sent and prints one JSON line with the times of
 *                the first and the last (ms, this process's monotonic clock; a blocking read per frame), and the
 *                frames the socket dropped; it stops early after IDLE_LIMIT_S without a frame.
 *   send COUNT:  writes COUNT broadcast frames onto the tap at once (the kernel queues them on the tap for the
 *                VMM to read) and prints one JSON line with how many the kernel took.
 * The frames stay on this one interface of a namespace with no routes: nothing leaves it.
 */
import { readFileSync } from "node:fs";
import { EAGAIN } from "../../src/sys/errors.js";
import { bind, close, errno, getsockopt, read, send, setsockopt, socket } from "../../src/sys/libc.js";

/** IEEE 802 Local Experimental Ethertype 1: no stack in the namespace handles it. */
const TEST_ETHERTYPE = 0x88b5;
/** An Ethernet frame of the largest standard size, without FCS: the guest's and this peer's. */
const FRAME_BYTES = 1514;
// linux/socket.h, linux/if_packet.h.
const AF_PACKET = 17;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
/** sizeof(struct sockaddr_ll). */
const SOCKADDR_LL_SIZE = 20;
// asm-generic/socket.h, linux/if_packet.h.
const SOL_SOCKET = 1;
const SO_RCVTIMEO = 20;
const SO_RCVBUFFORCE = 33;
const SOL_PACKET = 263;
const PACKET_STATISTICS = 6;
/**
 * Room for every frame of a phase: the guest's first frames come in a burst (a ring of 256 from the one-time
 * burst and the full bucket), and the default receive buffer (rmem_default, ~200 kB) holds about 90.
 */
const RECEIVE_BUFFER_BYTES = 16 << 20;
/** A count gives up after this long without a frame and reports what it has (the test then fails, not hangs). */
const IDLE_LIMIT_S = 10;

function fail(what: string): never {
  process.stderr.write(`net-rate-limit-peer: ${what} failed: errno ${errno()}\n`);
  process.exit(1);
}

function openPacketSocket(tap: string): number {
  // The protocol is in network byte order, for socket() as for sockaddr_ll.
  const protocolBe = ((TEST_ETHERTYPE & 0xff) << 8) | (TEST_ETHERTYPE >> 8);
  const fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, protocolBe) as number;
  if (fd < 0) fail("socket(AF_PACKET)");
  const address = Buffer.alloc(SOCKADDR_LL_SIZE);
  address.writeUInt16LE(AF_PACKET, 0);
  address.writeUInt16BE(TEST_ETHERTYPE, 2);
  address.writeInt32LE(Number(readFileSync(`/sys/class/net/${tap}/ifindex`, "utf8")), 4);
  if ((bind(fd, address, SOCKADDR_LL_SIZE) as number) < 0) fail(`bind to ${tap}`);
  const size = Buffer.alloc(4);
  size.writeInt32LE(RECEIVE_BUFFER_BYTES);
  if ((setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, size, 4) as number) < 0) fail("SO_RCVBUFFORCE");
  const timeout = Buffer.alloc(16);
  timeout.writeBigInt64LE(BigInt(IDLE_LIMIT_S), 0);
  if ((setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, timeout, 16) as number) < 0) fail("SO_RCVTIMEO");
  return fd;
}

function countFrames(fd: number, count: number): object {
  const buffer = Buffer.alloc(4096);
  let frames = 0;
  let wrongSize = 0;
  let firstMs = 0;
  let lastMs = 0;
  process.stdout.write("ready\n");
  while (frames < count) {
    const n = Number(read(fd, buffer, buffer.length));
    if (n < 0) {
      if (errno() === EAGAIN) break;
      fail("read");
    }
    const at = performance.now();
    if (n !== FRAME_BYTES) wrongSize++;
    if (frames++ === 0) firstMs = at;
    lastMs = at;
  }
  return { frames, wrongSize, firstMs, lastMs, drops: socketDrops(fd) };
}

/** Frames the kernel dropped because this socket's buffer was full (struct tpacket_stats.tp_drops). */
function socketDrops(fd: number): number {
  const stats = Buffer.alloc(8);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(stats.length);
  if ((getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, stats, length) as number) < 0) fail("PACKET_STATISTICS");
  return stats.readUInt32LE(4);
}

function sendFrames(fd: number, tap: string, count: number): object {
  const frame = Buffer.alloc(FRAME_BYTES);
  frame.fill(0xff, 0, 6);
  Buffer.from(readFileSync(`/sys/class/net/${tap}/address`, "utf8").trim().split(":").map((h) => parseInt(h, 16))).copy(frame, 6);
  frame.writeUInt16BE(TEST_ETHERTYPE, 12);
  let sent = 0;
  let errors = 0;
  for (let i = 0; i < count; i++) {
    frame.writeUInt32BE(i, 14);
    if (Number(send(fd, frame, FRAME_BYTES, 0)) === FRAME_BYTES) sent++;
    else errors++;
  }
  return { sent, errors };
}

const [mode, tap, countArg] = process.argv.slice(2);
const count = Number(countArg);
if ((mode !== "count" && mode !== "send") || !tap || !Number.isInteger(count) || count <= 0) {
  process.stderr.write("usage: net-rate-limit-peer.js count|send TAP COUNT\n");
  process.exit(2);
}
const fd = openPacketSocket(tap);
const result = mode === "count" ? countFrames(fd, count) : sendFrames(fd, tap, count);
close(fd);
process.stdout.write(`${JSON.stringify(result)}\n`);
