/**
 * The Linux guest end to end: the default guest boots to its init banner and reboots (ending the VMM with
 * exit code 0), with 1, 2 and 4 vCPUs; then, with an ext4 root on virtio-blk, virtio-rng and virtio-net on a tap inside a network
 * namespace this test makes, the guest's init prints a line read from the disk and entropy from /dev/hwrng,
 * and the host pings the guest kernel, which configured its address from `ip=`; over the same interface the guest's
 * init asks MMDS (V2) for a session token and a value, and is refused without a token. With a virtio-balloon,
 * inflating it makes the VMM's RSS fall.
 * Each boot takes a minute or more on a host whose KVM emulates guest ring 0.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, copyFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureDefaultGuest, type DefaultGuest } from "../../src/guest/default-guest.js";
import { detectHostVirtualization, EMULATED_RING0_KERNEL_ARGS } from "../../src/arch/x86/host.js";
import { kvmSkipReason } from "./kvm-available.js";
import { runPetasan, startPetasan } from "./petasan-process.js";
import { requireTool } from "../setup/host-tools.js";
import { answerGuestConnections, askGuest } from "./vsock-host.js";
import { createVm } from "../../src/lib/index.js";
import { mappingsOfSize, smapsOf } from "../../src/memory/testing/smaps.js";

const skip = kvmSkipReason();
const BOOT_TIMEOUT_MS = 300_000;
/** TEST-NET-1 (RFC 5737): addresses that exist only inside this test's own network namespace. */
const HOST_ADDR = "192.0.2.1";
const GUEST_ADDR = "192.0.2.2";

let guest: DefaultGuest;
let work: string;

before(async () => {
  if (skip) return;
  guest = await ensureDefaultGuest({ onProgress: (line) => process.stderr.write(`# ${line}\n`) });
  work = mkdtempSync(join(tmpdir(), "petasan-linux-"));
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Kernel arguments this host needs on top of `base` (see README: hosts without VT-x/AMD-V). */
function hostArgs(base: string): string {
  return detectHostVirtualization().hardware ? base : `${base} ${EMULATED_RING0_KERNEL_ARGS.join(" ")}`;
}

test("the default guest boots to its banner and its reboot ends the VMM with exit code 0", { skip, timeout: BOOT_TIMEOUT_MS }, async () => {
  const r = await runPetasan(["run", "--serial", "stdio"], BOOT_TIMEOUT_MS - 10_000);
  assert.match(r.stdout, /Welcome to the petasan default guest/);
  assert.match(r.stdout, /CPUs online: 1 \(0\)\r?\n/);
  assert.match(r.stdout, /BOOT-OK uptime=\d+/);
  assert.match(r.stdout, /reboot: Restarting system/);
  assert.equal(r.code, 0, `exit code; stderr:\n${r.stderr}`);
});

for (const cpus of [2, 4]) {
  test(`the default guest brings up all ${cpus} vCPUs`, { skip, timeout: BOOT_TIMEOUT_MS * 2 }, async () => {
    const r = await runPetasan(["run", "--cpus", String(cpus), "--serial", "stdio"], BOOT_TIMEOUT_MS * 2 - 10_000);
    assert.match(r.stdout, new RegExp(`smp: Brought up 1 node, ${cpus} CPUs`));
    assert.match(r.stdout, new RegExp(`CPUs online: ${cpus} \\(0-${cpus - 1}\\)\r?\n`));
    assert.match(r.stdout, /BOOT-OK uptime=\d+/);
    assert.equal(r.code, 0, `exit code; stderr:\n${r.stderr}`);
  });
}

test("ext4 root on virtio-blk, virtio-rng, vsock both ways, MMDS, and a ping over virtio-net in a network namespace", { skip, timeout: BOOT_TIMEOUT_MS }, async () => {
  const root = join(work, "rootfs");
  for (const d of ["dev", "proc", "sys", "etc", "sbin"]) mkdirSync(join(root, d), { recursive: true });
  copyFileSync(guest.init, join(root, "sbin", "init"));
  writeFileSync(join(root, "etc", "petasan-message"), "read from ext4 on virtio-blk\n");
  const image = join(work, "root.ext4");
  execFileSync(requireTool("mke2fs"), ["-q", "-F", "-t", "ext4", "-d", root, image, "16M"]);
  const [ip, pingTool] = [requireTool("ip"), requireTool("ping")];

  // MMDS V2 on eth0: the guest reaches 169.254.169.254 through its default route (the host address), and
  // petasan answers by destination address before anything reaches the tap.
  const mmdsData = join(work, "mmds.json");
  writeFileSync(mmdsData, JSON.stringify({ latest: { "meta-data": { "ami-id": "ami-12345678", "instance-type": "petasan.micro" } } }));

  const uds = join(work, "v.sock");
  const guestToHost = await answerGuestConnections(uds, 5000, "hello from the host\n");

  const ns = `petasan-test-${process.pid}`;
  const inNs = (...args: string[]) => execFileSync(ip, ["netns", "exec", ns, ...args], { stdio: "pipe" });
  execFileSync(ip, ["netns", "add", ns]);
  try {
    inNs("ip", "link", "set", "lo", "up");
    inNs("ip", "tuntap", "add", "dev", "ptap0", "mode", "tap", "vnet_hdr");
    inNs("ip", "addr", "add", `${HOST_ADDR}/24`, "dev", "ptap0");
    inNs("ip", "link", "set", "ptap0", "up");

    // The default guest (no --kernel) with a root drive boots that drive, not its own initramfs. The command line
    // already holds what petasan would add (this host's arguments, root=/dev/vda rw): none of it may appear twice.
    const cmdline = hostArgs(`${guest.cmdline} root=/dev/vda rw ip=${GUEST_ADDR}::${HOST_ADDR}:255.255.255.0::eth0:off petasan.hwrng petasan.vsock petasan.mmds bench.mode=idle`);
    const vm = startPetasan(
      ["run", "--drive", `path=${image},root`, "--rng", "--net", "tap=ptap0", "--vsock", `cid=3,uds=${uds}`,
        "--mmds-config", "version=V2,iface=eth0", "--mmds-data", mmdsData, "--cmdline", cmdline],
      BOOT_TIMEOUT_MS - 10_000,
      (argv) => [ip, "netns", "exec", ns, ...argv],
    );
    vm.child.stdin!.end();
    // vsock: the guest called the host first (vsock-reply= below); now the host calls the guest.
    await vm.waitFor("VSOCK-LISTENING");
    const call = await askGuest(uds, 5001, "ping from the host\n");
    assert.equal(call.answer, "guest heard: ping from the host\n");
    assert.ok(call.hostPort >= 2 ** 30, `host port ${call.hostPort}`);
    // The guest's init sleeps 5 s after printing IDLE: the window in which its kernel answers pings.
    await vm.waitFor("IDLE");
    const ping = execFileSync(ip, ["netns", "exec", ns, pingTool, "-c", "3", "-i", "0.2", "-W", "2", GUEST_ADDR], { encoding: "utf8" });
    assert.match(ping, /3 packets transmitted, 3 received/);

    const r = await vm.finished;
    assert.match(r.stdout, /virtio_blk virtio0: \[vda\]/);
    assert.match(r.stdout, /EXT4-fs \(vda\): mounted filesystem/);
    assert.match(r.stdout, /message=read from ext4 on virtio-blk/, "the init that ran is the root drive's");
    const kernelCmdline = /Command line: (.*)/.exec(r.stdout)?.[1] ?? "";
    for (const arg of ["root=/dev/vda", "rw", ...(detectHostVirtualization().hardware ? [] : EMULATED_RING0_KERNEL_ARGS)]) {
      assert.equal(kernelCmdline.split(/\s+/).filter((a) => a === arg).length, 1, `${arg} once in: ${kernelCmdline}`);
    }
    assert.match(r.stdout, /hwrng=[0-9a-f]{16}/);
    assert.match(r.stdout, /vsock-reply=hello from the host\r?\n/);
    // V2: PUT /latest/api/token with a TTL, then GET with the token; without a token, 401.
    assert.match(r.stdout, /mmds=ami-12345678\r?\n/);
    assert.match(r.stdout, /mmds-v1=HTTP\/1\.1 401 ?\r?\n/);
    assert.match(r.stdout, new RegExp(`IP-Config: Complete:[\\s\\S]*addr=${GUEST_ADDR.replaceAll(".", "\\.")}`));
    assert.equal(r.code, 0, `exit code; stderr:\n${r.stderr}`);
  } finally {
    guestToHost.close();
    execFileSync(ip, ["netns", "del", ns]);
  }
});

test("virtio-balloon: inflating gives guest memory back to the host (the VMM's RSS falls), and the guest reports statistics", { skip, timeout: BOOT_TIMEOUT_MS * 2 }, async () => {
  const MEM_MIB = 130; // a size no other mapping of this process has, to find the guest RAM in /proc/self/smaps
  /** What the balloon leaves the guest free: it then has to take most of the 64 MiB the guest dirtied and freed too. */
  const LEFT_FREE_MIB = 12;
  // petasan.balloon: the guest's init dirties 64 MiB, frees it, prints BALLOON-READY and sleeps (guest/init/init32.c).
  const vm = createVm({
    "boot-source": { kernel_image_path: guest.kernel, initrd_path: guest.initrd, boot_args: hostArgs(`${guest.cmdline} petasan.balloon`) },
    "machine-config": { vcpu_count: 1, mem_size_mib: MEM_MIB },
    // No free page reporting here: it would hand the freed 64 MiB back by itself, and this test is about inflation.
    balloon: { amount_mib: 0, deflate_on_oom: true, stats_polling_interval_s: 1, free_page_reporting: false },
  });
  let console = "";
  vm.console.setEncoding("utf8");
  vm.console.on("data", (d: string) => (console += d));
  const until = async (what: string, ok: () => boolean | Promise<boolean>, ms: number) => {
    const deadline = Date.now() + ms;
    while (!(await ok())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; console:\n${console}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  await vm.start();
  try {
    await until("BALLOON-READY", () => console.includes("BALLOON-READY"), BOOT_TIMEOUT_MS - 30_000);
    const ram = mappingsOfSize(MEM_MIB << 20);
    assert.equal(ram.length, 1, "one guest RAM mapping");
    const before = smapsOf(ram[0]).kb.Rss;
    // The balloon takes free pages the guest chooses, most never touched (so never backed): inflating nearly all of
    // its free memory makes it take the dirtied ones, which the host is backing, too.
    await until("the guest's first statistics", async () => (await vm.balloonStatistics()).free_memory !== undefined, 60_000);
    const freeMib = Math.floor((await vm.balloonStatistics()).free_memory! / (1 << 20));
    const TARGET_MIB = freeMib - LEFT_FREE_MIB;
    assert.ok(TARGET_MIB >= 24, `the guest has ${freeMib} MiB free`);

    await vm.setBalloonTarget(TARGET_MIB);
    await until(`the balloon to reach ${TARGET_MIB} MiB`, async () => (await vm.balloonStatistics()).actual_mib >= TARGET_MIB, 240_000);
    const after = smapsOf(ram[0]).kb.Rss;
    process.stderr.write(`# guest RAM RSS: ${before} kB before inflating ${TARGET_MIB} MiB, ${after} kB after\n`);
    assert.ok(before - after >= 16 * 1024, `RSS ${before} kB -> ${after} kB: most of the 64 MiB the guest dirtied and freed should go back`);
    const stats = await vm.balloonStatistics();
    assert.equal(stats.target_mib, TARGET_MIB);
    assert.ok(stats.total_memory !== undefined && stats.free_memory !== undefined, `the guest sent statistics: ${JSON.stringify(stats)}`);
    const { balloon_balloon: device } = (await vm.metrics()).devices;
    assert.ok(device.inflatedPages >= TARGET_MIB * 256, JSON.stringify(device));

    // Deflating: the guest takes pages back (they fault in again as zero pages when it touches them).
    await vm.setBalloonTarget(0);
    await until("the balloon to deflate", async () => (await vm.balloonStatistics()).actual_mib === 0, 240_000);
  } finally {
    await vm.stop();
  }
});
