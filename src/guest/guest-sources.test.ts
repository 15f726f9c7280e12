import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultCacheDir, guestDir, initramfsCacheName, kernelCacheName, loadGuestSources, type GuestSources } from "./guest-sources.js";

const sources: GuestSources = {
  config: Buffer.from("CONFIG_PVH=y\n"),
  patch: Buffer.from("--- a/x\n+++ b/x\n"),
  initSource: Buffer.from("void _start(void) {}\n"),
};
const withChange = (change: Partial<GuestSources>): GuestSources => ({ ...sources, ...change });

test("the kernel cache name follows config and patch, not the init", () => {
  const base = kernelCacheName(sources);
  assert.match(base, /^kernel-[0-9a-f]{16}$/);
  assert.equal(kernelCacheName(withChange({})), base, "same inputs, same name");
  assert.notEqual(kernelCacheName(withChange({ config: Buffer.from("CONFIG_PVH=n\n") })), base);
  assert.notEqual(kernelCacheName(withChange({ patch: Buffer.from("--- a/y\n") })), base);
  assert.equal(kernelCacheName(withChange({ initSource: Buffer.from("changed") })), base);
});

test("the initramfs cache name follows the init source only", () => {
  const base = initramfsCacheName(sources);
  assert.match(base, /^initramfs-[0-9a-f]{16}$/);
  assert.notEqual(initramfsCacheName(withChange({ initSource: Buffer.from("changed") })), base);
  assert.equal(initramfsCacheName(withChange({ config: Buffer.from("other") })), base);
});

test("moving bytes between config and patch changes the kernel cache name", () => {
  const a = withChange({ config: Buffer.from("ab"), patch: Buffer.from("c") });
  const b = withChange({ config: Buffer.from("a"), patch: Buffer.from("bc") });
  assert.notEqual(kernelCacheName(a), kernelCacheName(b));
});

test("the cache lives under $XDG_CACHE_HOME when it is absolute, else ~/.cache", () => {
  assert.equal(defaultCacheDir({ XDG_CACHE_HOME: "/var/cache/me" }, "/home/u"), "/var/cache/me/petasan");
  assert.equal(defaultCacheDir({ XDG_CACHE_HOME: "relative" }, "/home/u"), "/home/u/.cache/petasan");
  assert.equal(defaultCacheDir({}, "/home/u"), "/home/u/.cache/petasan");
});

test("the repository's guest sources load", async () => {
  const loaded = await loadGuestSources(guestDir());
  assert.match(loaded.config.toString(), /^CONFIG_PVH=y$/m);
  assert.match(loaded.patch.toString(), /^--- a\/arch\/x86\/kernel\/traps\.c$/m);
  assert.match(loaded.initSource.toString(), /BOOT-OK uptime=/);
});

test("a missing guest folder is a GuestBuildError naming the file", async (t) => {
  const empty = await mkdtemp(join(tmpdir(), "petasan-guest-"));
  t.after(() => rm(empty, { recursive: true, force: true }));
  await assert.rejects(loadGuestSources(empty), { name: "GuestBuildError", message: /linux-6\.1-petasan\.config is unreadable/ });
});
