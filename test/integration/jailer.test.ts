/**
 * The jailer and seccomp, end to end, as Firecracker's security tests check them (tests/integration_tests/
 * security/test_jail.py, test_seccomp.py): a VMM started by `petasan jailer` boots the echo guest through the
 * API socket inside its chroot, and /proc shows its root is the chroot, its uid/gid, cgroup, network and mount
 * namespaces and rlimits are the ones asked for, and every thread has a seccomp filter (seccomp.test.ts checks
 * what the filters do). Needs root, /dev/kvm, a cgroup v2 hierarchy and `ip`; cleans up every chroot, cgroup
 * and network namespace it makes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, rmdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { buildTestGuest } from "../guests/build.js";
import { kvmSkipReason } from "./kvm-available.js";
import { CLI, runPetasan, startPetasan } from "./petasan-process.js";
import { requestOverSocket } from "../../src/api/api-client.js";
import { cgroup2Mount } from "../../src/jailer/cgroup.js";
import { JAIL_PACKAGE_DIR } from "../../src/jailer/chroot.js";

const UID = 4242;
const GID = 4243;

function jailSkipReason(): string | false {
  const kvm = kvmSkipReason();
  if (kvm) return kvm;
  if (process.getuid?.() !== 0) return "the jailer needs root";
  try {
    cgroup2Mount();
  } catch (error) {
    return (error as Error).message;
  }
  return false;
}
const skip = jailSkipReason();
if (skip) console.error(`jailer tests skipped: ${skip}`);

async function waitForFile(p: string, ms: number): Promise<void> {
  for (const end = Date.now() + ms; !existsSync(p); await sleep(50)) {
    if (Date.now() > end) throw new Error(`${p} did not appear within ${ms} ms`);
  }
}

function status(pid: number, tid?: number): Record<string, string> {
  const text = readFileSync(tid === undefined ? `/proc/${pid}/status` : `/proc/${pid}/task/${tid}/status`, "utf8");
  return Object.fromEntries(text.split("\n").filter(Boolean).map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1).trim()]));
}

/**
 * pivot_root, as Firecracker's jailer (src/jailer/src/chroot.rs): the VMM's mount namespace holds one mount, the
 * jail's root bound onto itself, at "/"; the host's root was unmounted, so there is nothing outside the jail to
 * climb back to, even for a process that regains root. (A chroot alone leaves the host's mounts in the namespace:
 * /proc/<pid>/mountinfo, which lists the mounts the process's root can reach, then shows none, the jail not being
 * a mount of its own.)
 */
function assertOnlyTheJailIsMounted(pid: number, root: string): void {
  const mounts = readFileSync(`/proc/${pid}/mountinfo`, "utf8").trim().split("\n").filter(Boolean).map((line) => line.split(" "));
  // mountinfo fields (proc(5)): id, parent id, major:minor, root (within its file system), mount point, ...
  assert.deepEqual(mounts.map((fields) => fields[4]), ["/"], `one mount, at /:\n${mounts.map((f) => f.join(" ")).join("\n")}`);
  assert.ok(mounts[0][3].endsWith("/root") && root.endsWith(mounts[0][3]), `the mount at / is the jail ${root}, not ${mounts[0][3]}`);
}

test("a jailed VMM boots a guest: its root is the chroot, it runs as uid/gid in its cgroup, netns and rlimits, every thread filtered", { skip }, async () => {
  const kernel = await buildTestGuest("echo");
  const base = mkdtempSync(path.join(tmpdir(), "petasan-jail-"));
  const id = `jail-test-${process.pid}`;
  const netns = `petasan-jail-${process.pid}`;
  const parentCgroup = `petasan-test-${process.pid}`;
  const cgroupDir = path.join(cgroup2Mount(), parentCgroup);
  execFileSync("ip", ["netns", "add", netns]);
  let petasan: ReturnType<typeof startPetasan> | undefined;
  try {
    const root = path.join(base, "petasan", id, "root");
    petasan = startPetasan([
      "jailer", "--id", id, "--uid", String(UID), "--gid", String(GID), "--chroot-base-dir", base, "--netns", `/run/netns/${netns}`,
      "--cgroup-version", "2", "--parent-cgroup", parentCgroup, "--cgroup", "cgroup.max.descendants=2",
      "--resource-limit", "no-file=512", "--resource-limit", "fsize=50000000", "--", "--api-sock", "/api.sock",
    ], 60_000);
    const pid = petasan.child.pid!;
    const running = petasan;
    const socket = path.join(root, "api.sock");
    await waitForFile(socket, 30_000);

    // The client's files go inside the chroot, as with Firecracker's jailer.
    copyFileSync(kernel, path.join(root, "kernel"));
    const api = (method: string, p: string, body?: object) => requestOverSocket(socket, method, p, body);
    assert.equal((await api("PUT", "/boot-source", { kernel_image_path: "/kernel", boot_args: "console=ttyS0 reboot=k panic=1" })).status, 204);
    assert.equal((await api("PUT", "/machine-config", { vcpu_count: 1, mem_size_mib: 128 })).status, 204);
    assert.equal((await api("PUT", "/actions", { action_type: "InstanceStart" })).status, 204);
    await running.waitFor("echo: ready\n");

    const rootStat = statSync(root);
    const seenRoot = statSync(`/proc/${pid}/root/`);
    assert.deepEqual([seenRoot.dev, seenRoot.ino], [rootStat.dev, rootStat.ino], "the VMM's / is the chroot");
    const st = status(pid);
    assert.equal(st.Uid, `${UID}\t${UID}\t${UID}\t${UID}`);
    assert.equal(st.Gid, `${GID}\t${GID}\t${GID}\t${GID}`);
    assert.equal(st.Groups, "");
    assert.equal(st.CapEff, "0000000000000000");
    assert.equal(st.NoNewPrivs, "1");
    assert.match(readFileSync(`/proc/${pid}/cgroup`, "utf8"), new RegExp(`^0::/${parentCgroup}/${id}$`, "m"));
    assert.equal(readFileSync(path.join(cgroupDir, id, "cgroup.max.descendants"), "utf8").trim(), "2");
    assert.equal(statSync(`/proc/${pid}/ns/net`).ino, statSync(`/run/netns/${netns}`).ino, "in the given network namespace");
    assert.notEqual(statSync(`/proc/${pid}/ns/mnt`).ino, statSync("/proc/self/ns/mnt").ino, "in a mount namespace of its own");
    assertOnlyTheJailIsMounted(pid, root);
    // bin/petasan.js runs the bundle when it is not older than tsc's output: the jail has it, timestamps kept.
    const inJail = (file: string) => statSync(path.join(root, JAIL_PACKAGE_DIR, file), { throwIfNoEntry: false })?.mtimeMs ?? -1;
    assert.ok(inJail("dist/bundle/petasan.js") >= inJail("dist/src/cli/main.js") && inJail("dist/src/cli/main.js") > 0, "the jail has the bundle, as new as dist/src");
    const limits = readFileSync(`/proc/${pid}/limits`, "utf8");
    assert.match(limits, /^Max open files\s+512\s+512/m);
    assert.match(limits, /^Max file size\s+50000000\s+50000000/m);
    // No fd reaches outside the jail: the jailer's own were closed at exec (stdio are pipes here). A file's path
    // is the one it has in the VMM's mount namespace, whose root is the jail: it must be that file of the jail.
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (!target.startsWith("/")) continue;
      const [open, inJail] = [statSync(`/proc/${pid}/fd/${fd}`), statSync(path.join(root, target), { throwIfNoEntry: false })];
      assert.deepEqual([open.dev, open.ino], [inJail?.dev, inJail?.ino], `fd ${fd} -> ${target} is outside the jail`);
    }

    const threads = readdirSync(`/proc/${pid}/task`).map(Number);
    const names = threads.map((t) => readFileSync(`/proc/${pid}/task/${t}/comm`, "utf8").trim());
    assert.ok(names.includes("petasan") && names.includes("petasan-devices") && names.includes("petasan-vcpu0"), names.join(","));
    for (const t of threads) {
      const s = status(pid, t);
      assert.equal(s.Seccomp, "2", `thread ${t} (${readFileSync(`/proc/${pid}/task/${t}/comm`, "utf8").trim()}) has a seccomp filter`);
      // The process filter on every thread, and the VM's threads their own on top (a thread Node starts after the
      // main thread narrowed itself inherits both).
      const own = ["petasan", "petasan-devices", "petasan-vcpu0"].includes(readFileSync(`/proc/${pid}/task/${t}/comm`, "utf8").trim());
      if (own) assert.equal(Number(s.Seccomp_filters), 2, `thread ${t}`);
      else assert.ok(Number(s.Seccomp_filters) >= 1, `thread ${t}`);
    }

    petasan.child.stdin!.write("q");
    const finished = await petasan.finished;
    assert.equal(finished.code, 0, finished.stderr);
    assert.match(finished.stdout, /echo: bye\n/);
  } finally {
    if (petasan !== undefined && petasan.child.exitCode === null && petasan.child.signalCode === null) {
      petasan.child.kill("SIGKILL");
      await petasan.finished;
    }
    rmSync(base, { recursive: true, force: true });
    for (const dir of [path.join(cgroupDir, id), cgroupDir]) if (existsSync(dir)) rmdirSync(dir);
    execFileSync("ip", ["netns", "del", netns]);
  }
});

test("--new-pid-ns --daemonize: the VMM is pid 1 of a pid namespace, its host pid in <chroot>/petasan.pid, in a session of its own with stdio on /dev/null", { skip }, async () => {
  const kernel = await buildTestGuest("echo");
  const base = mkdtempSync(path.join(tmpdir(), "petasan-jail-"));
  const id = `jail-pidns-${process.pid}`;
  const root = path.join(base, "petasan", id, "root");
  let pid: number | undefined;
  try {
    const jailer = startPetasan([
      "jailer", "--id", id, "--uid", String(UID), "--gid", String(GID), "--chroot-base-dir", base, "--new-pid-ns", "--daemonize",
      "--", "--api-sock", "/api.sock",
    ], 60_000);
    const jailerExit = await new Promise<number | null>((resolve) => jailer.child.once("exit", resolve));
    assert.equal(jailerExit, 0, "the jailer ends once the VMM is started");
    pid = Number(readFileSync(path.join(root, "petasan.pid"), "utf8"));
    assert.ok(pid > 1 && pid !== jailer.child.pid);
    assert.equal(status(pid).NSpid, `${pid}\t1`, "pid 1 in its own pid namespace");
    assertOnlyTheJailIsMounted(pid, root);
    const socket = path.join(root, "api.sock");
    await waitForFile(socket, 30_000);
    assert.equal(sessionOf(pid), pid, "a session leader (setsid)");
    // Opened before the jail, as Firecracker's jailer does: the host's /dev/null.
    for (const fd of [0, 1, 2]) assert.equal(readlinkSync(`/proc/${pid}/fd/${fd}`), "/dev/null");
    assert.equal(status(pid).Uid, `${UID}\t${UID}\t${UID}\t${UID}`);

    copyFileSync(kernel, path.join(root, "kernel"));
    assert.equal((await requestOverSocket(socket, "PUT", "/boot-source", { kernel_image_path: "/kernel" })).status, 204);
    assert.equal((await requestOverSocket(socket, "PUT", "/actions", { action_type: "InstanceStart" })).status, 204);
    assert.equal((((await requestOverSocket(socket, "GET", "/")).json) as { state: string }).state, "Running");
    for (const t of readdirSync(`/proc/${pid}/task`)) assert.equal(status(pid, Number(t)).Seccomp, "2");
    // pid 1 of a namespace gets only the signals it handles: petasan handles SIGTERM by stopping the VM.
    process.kill(pid, "SIGTERM");
    for (let i = 0; i < 100 && existsSync(`/proc/${pid}`); i++) await sleep(100);
    assert.equal(existsSync(`/proc/${pid}`), false, "SIGTERM ended the VMM");
  } finally {
    if (pid !== undefined && existsSync(`/proc/${pid}`)) process.kill(pid, "SIGKILL");
    rmSync(base, { recursive: true, force: true });
  }
});

function sessionOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[3]);
}

test("--daemonize alone: the VMM leads a new session, as the jailer's own process, or as its child when the jailer leads a process group (setsid would fail)", { skip }, async () => {
  const base = mkdtempSync(path.join(tmpdir(), "petasan-jail-"));
  const pids: number[] = [];
  try {
    // Not a process group leader (the test's child, in the test's group): setsid succeeds and the jailer execs.
    const own = startPetasan(["jailer", "--id", "own", "--uid", String(UID), "--gid", String(GID), "--chroot-base-dir", base, "--daemonize", "--", "--api-sock", "/api.sock"], 60_000);
    pids.push(own.child.pid!);
    await waitForFile(path.join(base, "petasan", "own", "root", "api.sock"), 30_000);
    assert.equal(sessionOf(own.child.pid!), own.child.pid, "the jailer's own process, in a session of its own");
    assertOnlyTheJailIsMounted(own.child.pid!, path.join(base, "petasan", "own", "root"));

    // A process group leader (detached: a session of its own already): the VMM is its child, the jailer exits 0.
    const leader = spawn(process.execPath, [CLI, "jailer", "--id", "leader", "--uid", String(UID), "--gid", String(GID), "--chroot-base-dir", base, "--daemonize", "--", "--api-sock", "/api.sock"], { detached: true, stdio: "ignore" });
    const leaderExit = await new Promise<number | null>((resolve) => leader.once("exit", resolve));
    assert.equal(leaderExit, 0, "the jailer ends once the VMM is started");
    const root = path.join(base, "petasan", "leader", "root");
    const pid = Number(readFileSync(path.join(root, "petasan.pid"), "utf8"));
    pids.push(pid);
    assert.ok(pid > 1 && pid !== leader.pid);
    await waitForFile(path.join(root, "api.sock"), 30_000);
    assert.equal(sessionOf(pid), pid, "a session of its own");
    assert.equal(status(pid).Uid, `${UID}\t${UID}\t${UID}\t${UID}`);
    assertOnlyTheJailIsMounted(pid, root);
  } finally {
    for (const pid of pids) if (existsSync(`/proc/${pid}`)) process.kill(pid, "SIGKILL");
    rmSync(base, { recursive: true, force: true });
  }
});

test("a jailer that cannot finish says why in one line, exits 1, and leaves no chroot or cgroup behind", { skip }, async () => {
  const base = mkdtempSync(path.join(tmpdir(), "petasan-jail-"));
  const parentCgroup = `petasan-test-fail-${process.pid}`;
  try {
    const common = ["jailer", "--id", "fails", "--uid", String(UID), "--gid", String(GID), "--chroot-base-dir", base];
    const noNetns = await runPetasan([...common, "--netns", "/run/netns/petasan-no-such-netns"], 30_000);
    assert.equal(noNetns.code, 1, noNetns.stderr);
    assert.match(noNetns.stderr, /^petasan jailer: --netns: ENOENT: no such file or directory, open '\/run\/netns\/petasan-no-such-netns'$/m);
    assert.deepEqual(readdirSync(base), []);

    const badValue = await runPetasan([...common, "--parent-cgroup", parentCgroup, "--cgroup", "cgroup.max.descendants=lots"], 60_000);
    assert.equal(badValue.code, 1, badValue.stderr);
    assert.match(badValue.stderr, /^petasan jailer: cannot write "lots" to .*cgroup\.max\.descendants: /m);
    assert.equal(badValue.stderr.trim().split("\n").length, 1, badValue.stderr);
    assert.deepEqual(readdirSync(path.join(base, "petasan")), [], "the chroot is gone");
    assert.equal(existsSync(path.join(cgroup2Mount(), parentCgroup)), false, "the cgroup is gone");

    const usage = await runPetasan(["jailer", "--id", "x"], 30_000);
    assert.equal(usage.code, 1);
    assert.match(usage.stderr, /^petasan jailer: --uid is required$/m);
  } finally {
    rmSync(base, { recursive: true, force: true });
    for (const dir of [path.join(cgroup2Mount(), parentCgroup, "fails"), path.join(cgroup2Mount(), parentCgroup)]) if (existsSync(dir)) rmdirSync(dir);
  }
});
