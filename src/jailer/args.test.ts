import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_CHROOT_BASE, DEFAULT_NO_FILE, JailerUsageError, parseJailerArgs } from "./args.js";
import { cgroup2Mount } from "./cgroup.js";

const EXEC = "/opt/petasan/bin/petasan.js";

test("Firecracker's jailer flags, its defaults, and the VMM's arguments after --", () => {
  const a = parseJailerArgs(["--id", "vm1", "--uid", "4242", "--gid", "4243", "--", "--api-sock", "/api.sock"], EXEC);
  assert.deepEqual(a, {
    id: "vm1", execFile: EXEC, execName: "petasan", uid: 4242, gid: 4243, chrootBaseDir: DEFAULT_CHROOT_BASE, netns: undefined,
    cgroups: [], parentCgroup: "petasan", resourceLimits: { noFile: DEFAULT_NO_FILE }, daemonize: false, newPidNs: false,
    vmmArgs: ["--api-sock", "/api.sock"],
  });
  const b = parseJailerArgs([
    "--id", "a-1", "--uid", "1", "--gid", "2", "--exec-file", "/x/fc.js", "--chroot-base-dir", "/srv/j", "--netns", "/run/netns/n",
    "--cgroup-version", "2", "--cgroup", "cpu.max=50000 100000", "--cgroup", "memory.max=1G", "--parent-cgroup", "all/vms",
    "--resource-limit", "fsize=1000", "--resource-limit", "no-file=64", "--daemonize", "--new-pid-ns",
  ], EXEC);
  assert.equal(b.execName, "fc");
  assert.deepEqual(b.cgroups, [{ file: "cpu.max", value: "50000 100000" }, { file: "memory.max", value: "1G" }]);
  assert.deepEqual(b.resourceLimits, { fsize: 1000, noFile: 64 });
  assert.deepEqual([b.parentCgroup, b.daemonize, b.newPidNs, b.netns, b.vmmArgs], ["all/vms", true, true, "/run/netns/n", []]);
});

test("bad jailer flags are refused in one line", () => {
  const bad = (argv: string[], message: RegExp) => assert.throws(() => parseJailerArgs(argv, EXEC), (e: unknown) => e instanceof JailerUsageError && message.test(e.message));
  const ok = ["--id", "vm1", "--uid", "1", "--gid", "1"];
  bad(["--uid", "1", "--gid", "1"], /--id is required/);
  bad(["--id", "vm1", "--gid", "1"], /--uid is required/);
  bad(["--id", "../etc", "--uid", "1", "--gid", "1"], /must be 1 to 64 letters/);
  bad(["--id", "x".repeat(65), "--uid", "1", "--gid", "1"], /must be 1 to 64/);
  bad(["--id", "vm1", "--uid", "4294967295", "--gid", "1"], /--uid: "4294967295" is not a user or group id/);
  bad(["--id", "vm1", "--uid", "1", "--gid", "x"], /--gid: "x" is not/);
  bad([...ok, "--cgroup-version", "1"], /cgroup v2 only/);
  bad([...ok, "--cgroup", "nonsense"], /is not <cgroup file>=<value>/);
  bad([...ok, "--parent-cgroup", "../x"], /relative path without/);
  bad([...ok, "--resource-limit", "cpu=1"], /is not fsize=<bytes> or no-file=<count>/);
  bad([...ok, "--bogus"], /bogus/);
});

test("the cgroup v2 mount is found in /proc/mounts", () => {
  assert.equal(cgroup2Mount("cgroup /sys/fs/cgroup/cpu cgroup rw 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n"), "/sys/fs/cgroup/unified");
  assert.throws(() => cgroup2Mount("proc /proc proc rw 0 0\n"), /no cgroup v2 hierarchy/);
});
