import { test } from "node:test";
import assert from "node:assert/strict";
import { parseRunArgs, RUN_USAGE, UsageError } from "./run-args.js";
import { parseSizeMiB, SizeError } from "./size.js";

test("sizes as users type them", () => {
  assert.equal(parseSizeMiB("256M", "m"), 256);
  assert.equal(parseSizeMiB("2G", "m"), 2048);
  assert.equal(parseSizeMiB("1536", "m"), 1536);
  assert.equal(parseSizeMiB("4096K", "m"), 4);
  assert.throws(() => parseSizeMiB("12X", "m"), SizeError);
  assert.throws(() => parseSizeMiB("1K", "m"), SizeError);
});

test("flags become the shared VM config", () => {
  const a = parseRunArgs(["--kernel", "k", "--memory", "1G", "--cpus", "2", "--drive", "path=/img,root,ro", "--drive", "path=/data,id=data",
    "--net", "tap=tap0,mac=02:00:00:00:00:01", "--rng", "--serial", "file:/tmp/out"]);
  assert.equal(a.config["machine-config"].mem_size_mib, 1024);
  assert.equal(a.config["machine-config"].vcpu_count, 2);
  assert.deepEqual(a.config.drives.map((d) => [d.drive_id, d.path_on_host, d.is_root_device, d.is_read_only]), [["drive0", "/img", true, true], ["data", "/data", false, false]]);
  assert.equal(a.config["network-interfaces"][0].host_dev_name, "tap0");
  assert.ok(a.config.entropy);
  assert.deepEqual(a.serial, { kind: "file", path: "/tmp/out" });
  assert.equal(a.kernel, "k");
});

test("bad flags are usage errors naming the flag", () => {
  const cases: [string[], RegExp][] = [
    [["--memory", "32M"], /--memory/],
    [["--memory", "17G"], /--memory/],
    [["--memory", "lots"], /--memory/],
    [["--cpus", "0"], /vcpu_count/],
    [["--cpus", "two"], /--cpus/],
    [["--cpu-template", "fast"], /cpu_template/],
    [["--serial", "tcp:1"], /--serial/],
    [["--drive", "ro"], /--drive/],
    [["--drive", "path=/a,bogus"], /bogus/],
    [["--net", "mac=1"], /--net/],
    [["--vsock", "cid=3"], /--vsock/],
    [["--vsock", "cid=2,uds=/v.sock"], /guest_cid/],
    [["--initrd", "x"], /--initrd needs --kernel/],
    [["--log-level", "loud"], /--log-level/],
    [["--frobnicate"], /frobnicate/],
  ];
  for (const [argv, re] of cases) assert.throws(() => parseRunArgs(argv), (e: Error) => e instanceof UsageError && re.test(e.message), argv.join(" "));
});

test("--vsock becomes the config's vsock device", () => {
  assert.deepEqual(parseRunArgs(["--vsock", "cid=7,uds=/run/v.sock"]).config.vsock, { guest_cid: 7, uds_path: "/run/v.sock" });
});

test("--mmds-config and --mmds-data configure MMDS on the NICs", () => {
  const a = parseRunArgs(["--net", "tap=t0", "--net", "tap=t1,id=web", "--mmds-config", "version=v2,imds", "--mmds-data", "/m.json"]);
  assert.deepEqual(a.config["mmds-config"], { version: "V2", network_interfaces: ["eth0", "web"], ipv4_address: "169.254.169.254", imds_compat: true });
  assert.equal(a.mmdsDataFile, "/m.json");
  const b = parseRunArgs(["--net", "tap=t0", "--mmds-config", "iface=eth0,ipv4=169.254.1.2"]);
  assert.deepEqual(b.config["mmds-config"], { version: "V1", network_interfaces: ["eth0"], ipv4_address: "169.254.1.2", imds_compat: false });
  assert.throws(() => parseRunArgs(["--mmds-data", "/m.json"]), /--mmds-data needs --mmds-config/);
  assert.throws(() => parseRunArgs(["--net", "tap=t0", "--mmds-config", "iface=eth9"]), /MMMDS config error: The list of network interface IDs provided/);
  assert.throws(() => parseRunArgs(["--mmds-config", "version=V2"]), /is empty/);
  assert.throws(() => parseRunArgs(["--net", "tap=t0", "--mmds-config", "version=V3"]), UsageError);
});

test("memory flags: --huge-pages is machine-config's huge_pages, --ksm and --numa-node are host options", () => {
  const plain = parseRunArgs(["--kernel", "k"]);
  assert.equal(plain.config["machine-config"].huge_pages, "None");
  assert.deepEqual(plain.host, {});
  const a = parseRunArgs(["--kernel", "k", "--huge-pages", "2M", "--ksm", "--numa-node", "0"]);
  assert.equal(a.config["machine-config"].huge_pages, "2M");
  assert.deepEqual(a.host, { ksm: true, numaNode: 0 });
  assert.throws(() => parseRunArgs(["--kernel", "k", "--huge-pages", "1G"]), (e: Error) => e instanceof UsageError && /huge_pages/.test(e.message));
  assert.throws(() => parseRunArgs(["--kernel", "k", "--numa-node", "x"]), (e: Error) => e instanceof UsageError && /--numa-node/.test(e.message));
});

test("seccomp as in the Firecracker mode: on by default, --no-seccomp, --seccomp-filter FILE, not both", () => {
  assert.deepEqual(parseRunArgs([]).seccomp, { kind: "default" });
  assert.deepEqual(parseRunArgs(["--no-seccomp"]).seccomp, { kind: "off" });
  assert.deepEqual(parseRunArgs(["--seccomp-filter", "f.json"]).seccomp, { kind: "file", path: "f.json" });
  assert.throws(() => parseRunArgs(["--no-seccomp", "--seccomp-filter", "f.json"]), /'no-seccomp' cannot be used together with argument 'seccomp-filter'/);
});

test("the usage text shows the vsock handshake's \\n as characters, not as a line break inside the flag's help", () => {
  assert.match(RUN_USAGE, /\("CONNECT <port>\\n"\), guest connections/);
});
