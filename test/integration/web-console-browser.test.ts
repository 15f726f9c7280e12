/**
 * `petasan console` driven in a real headless browser (Debian's chromium through puppeteer-core), as a user
 * would: load the list, create VMs (a pasted Firecracker config and the form), watch the echo guest's banner
 * in the terminal, type and see the echo, snapshot a VM and restore it as another whose console echoes, pause
 * (state and exit counters stop), resume, stop. Screenshots of the list, the console, the plots and the
 * snapshot dialog go to test-artifacts/web-console/ (docs/console/ holds copies).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { buildTestGuest } from "../guests/build.js";
import { requireTool } from "../setup/host-tools.js";
import { kvmSkipReason } from "./kvm-available.js";
import { startPetasan, type Running } from "./petasan-process.js";

// Functions passed to page.evaluate run in the browser; this program is compiled without the DOM's types.
/* eslint-disable @typescript-eslint/no-explicit-any */
declare const document: any, window: any, getComputedStyle: any;
type HTMLElement = any;
type HTMLInputElement = any;
type HTMLTextAreaElement = any;

const skip = kvmSkipReason();
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
export const ARTIFACTS = path.join(ROOT, "test-artifacts", "web-console");
const TIMEOUT_MS = 120_000;

/** Starts `petasan console` on a free loopback port; resolves with the process and the URL it printed. */
export async function startConsole(args: string[]): Promise<{ petasan: Running; url: string }> {
  const petasan = startPetasan(["console", ...args], TIMEOUT_MS);
  await petasan.waitFor(/petasan console: (http:\S+)\n/);
  const url = /petasan console: (http:\S+)\n/.exec(petasan.stdout())![1];
  return { petasan, url };
}

/** Debian's chromium, headless; as root it needs --no-sandbox. puppeteer-core never downloads a browser. */
export function launchBrowser(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: spawnSync("sh", ["-c", 'command -v "$1"', "sh", requireTool("chromium")], { encoding: "utf8" }).stdout.trim(),
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
  });
}

const terminalText = (page: Page) => page.$eval("#terminal .xterm-rows", (rows) => (rows as HTMLElement).innerText);
const cell = (page: Page, id: string, name: string) => page.$eval(`#vm-list tr[data-vm="${id}"] td.${name}`, (td) => td.textContent ?? "");

async function waitForCell(page: Page, id: string, name: string, text: string): Promise<void> {
  await page.waitForFunction((sel, want) => document.querySelector(sel)?.textContent === want, { timeout: 30_000 }, `#vm-list tr[data-vm="${id}"] td.${name}`, text);
}

async function waitForTerminal(page: Page, text: string): Promise<void> {
  await page.waitForFunction((want) => (document.querySelector("#terminal .xterm-rows") as HTMLElement | null)?.innerText.includes(want), { timeout: 30_000 }, text)
    .catch(async (error: Error) => assert.fail(`"${text}" not in the terminal (${error.message}); it shows:\n${await terminalText(page)}`));
}

/**
 * Clicks a VM's row in the list. The list is redrawn every second and on every sample, so a row found by one
 * CDP call may be gone by the next (puppeteer's "Node is detached"): the click happens inside the page instead.
 */
async function selectRow(page: Page, id: string): Promise<void> {
  await page.$eval(`#vm-list tr[data-vm="${id}"]`, (row) => (row as HTMLElement).click());
}

/** The exact exit total the server reports (the page's cell rounds large numbers). */
async function exitsTotal(page: Page, id: string): Promise<number | undefined> {
  return page.evaluate(async (vm) => ((await (await fetch(`/api/vms/${vm}`)).json()) as { exitsTotal?: number }).exitsTotal, id);
}

test("the web console in a browser: list, create, console, type, snapshot, restore, pause, resume, stop; screenshots", { skip, timeout: TIMEOUT_MS }, async () => {
  const kernel = await buildTestGuest("echo");
  mkdirSync(ARTIFACTS, { recursive: true });
  const snapshots = mkdtempSync(path.join(tmpdir(), "petasan-console-browser-"));
  const { petasan, url } = await startConsole(["--listen", "127.0.0.1:0", "--allow", path.dirname(kernel), "--allow", snapshots]);
  let browser: Browser | undefined;
  try {
    browser = await launchBrowser();
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 1000 });
    const pageErrors: string[] = [];
    page.on("pageerror", (error) => pageErrors.push(String(error)));
    // Console errors include Content-Security-Policy violations and failed loads: the page has none.
    page.on("console", (message) => {
      if (message.type() === "error") pageErrors.push(message.text());
    });

    // The list, empty, and the events stream live.
    await page.goto(url);
    await page.waitForSelector("#connection.live");
    assert.equal(await page.$eval("#empty", (p) => (p as HTMLElement).hidden), false);

    // Create a VM from a pasted Firecracker config.
    await page.click("#new-vm");
    const shown = (selector: string) => page.$eval(selector, (e) => getComputedStyle(e).display !== "none");
    assert.deepEqual([await shown("#mode-form"), await shown("#mode-json")], [true, false], "the form, not the JSON box, at first");
    await page.click("input[name=mode][value=json]");
    assert.deepEqual([await shown("#mode-form"), await shown("#mode-json")], [false, true]);
    const config = { "boot-source": { kernel_image_path: kernel }, "machine-config": { vcpu_count: 1, mem_size_mib: 64 } };
    await page.$eval("textarea[name=config]", (area, text) => ((area as HTMLTextAreaElement).value = text), JSON.stringify(config, null, 2));
    await page.type("input[name=json_name]", "echo");
    await page.click("#create-form button[type=submit]");
    await waitForCell(page, "vm1", "state", "Running");
    assert.equal(await cell(page, "vm1", "name"), "echo");
    assert.equal(await cell(page, "vm1", "vcpus"), "1");
    assert.equal(await cell(page, "vm1", "memory"), "64 MiB");

    // Its console prints the guest's banner; typing reaches the guest, which echoes it uppercased.
    await waitForTerminal(page, "echo: ready");
    await page.click("#terminal");
    await page.keyboard.type("hello from the browser");
    await waitForTerminal(page, "HELLO FROM THE BROWSER");
    // A second viewer of the same VM (another tab): it gets the scrollback, and sees what the first one types.
    const other = await browser.newPage();
    await other.goto(`${url}#vm1`);
    await waitForTerminal(other, "HELLO FROM THE BROWSER");
    await page.bringToFront();
    await page.click("#terminal");
    await page.keyboard.type(" and again");
    await waitForTerminal(page, "AND AGAIN");
    // A tab in the background draws nothing: look at it, as its user would.
    await other.bringToFront();
    await waitForTerminal(other, "AND AGAIN");
    await page.bringToFront();
    await waitForCell(page, "vm1", "viewers", "2");
    await other.close();
    await waitForCell(page, "vm1", "viewers", "1");

    // Exits arrive as samples: a second's worth after the typing.
    await page.waitForFunction(() => Number(document.querySelector('#vm-list tr[data-vm="vm1"] td.exits')?.textContent) > 0, { timeout: 10_000 });

    // An uploaded config file fills the JSON box.
    await page.click("#new-vm");
    await page.click("input[name=mode][value=json]");
    const upload = path.join(ARTIFACTS, "uploaded-config.json");
    writeFileSync(upload, JSON.stringify(config));
    const fileInput = await page.$("input[name=config_file]");
    await (fileInput as unknown as { uploadFile(p: string): Promise<void> }).uploadFile(upload);
    await page.waitForFunction(() => document.querySelector("textarea[name=config]").value.includes("mem_size_mib"), { timeout: 5000 });
    assert.deepEqual(JSON.parse(await page.$eval("textarea[name=config]", (a) => a.value)), config);
    await page.click("#create-cancel");

    // A second VM from the form, created without starting it, then started.
    await page.click("#new-vm");
    await page.click("input[name=mode][value=form]");
    await page.type("input[name=name]", "echo-2");
    await page.type("input[name=kernel]", kernel);
    await page.$eval("input[name=vcpus]", (input) => ((input as HTMLInputElement).value = "2"));
    await page.click("input[name=start]");
    await page.click("#create-form button[type=submit]");
    await waitForCell(page, "vm2", "state", "Created");
    assert.equal(await cell(page, "vm2", "vcpus"), "2");
    await page.click('#actions button[data-action="start"]');
    await waitForCell(page, "vm2", "state", "Running");
    await waitForTerminal(page, "echo: ready");
    await page.click("#terminal");
    await page.keyboard.type("two viewers");
    await waitForTerminal(page, "TWO VIEWERS");

    // Snapshot the first VM (paused while it is written, running again after); a folder not allowed is refused.
    await selectRow(page, "vm1");
    await waitForTerminal(page, "HELLO FROM THE BROWSER");
    await page.click('#actions button[data-action="snapshot"]');
    await page.waitForSelector("#snapshot-dialog[open]");
    const value = (selector: string) => page.$eval(selector, (input) => (input as HTMLInputElement).value);
    const setValue = (selector: string, text: string) => page.$eval(selector, (input, v) => ((input as HTMLInputElement).value = v), text);
    assert.equal(await value("#snapshot-form input[name=snapshot_path]"), path.join(path.dirname(kernel), "echo.snap"), "beside the kernel at first");
    assert.equal(await page.$eval("#snapshot-form input[value=Diff]", (i) => (i as HTMLInputElement).disabled), true, "no Diff without dirty page tracking");
    const snapPath = path.join(snapshots, "echo.snap");
    const memPath = path.join(snapshots, "echo.mem");
    await setValue("#snapshot-form input[name=snapshot_path]", snapPath);
    await setValue("#snapshot-form input[name=mem_file_path]", memPath);
    await (await page.$("#snapshot-dialog"))!.screenshot({ path: path.join(ARTIFACTS, "snapshot.png") });
    await setValue("#snapshot-form input[name=snapshot_path]", "/etc/echo.snap");
    await page.click("#snapshot-form button[type=submit]");
    await page.waitForFunction(() => !document.getElementById("snapshot-error").hidden, { timeout: 10_000 });
    assert.match(await page.$eval("#snapshot-error", (e) => e.textContent ?? ""), /snapshotPath: \/etc\/echo\.snap is outside the paths this console may use/);
    // The browser logs the refused request as a failed load: that one is expected.
    for (let i = 0; !pageErrors.some((e) => e.includes("status of 400")); i++) {
      if (i > 100) assert.fail(`the refused snapshot was not logged; page errors: ${pageErrors.join("; ")}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    pageErrors.splice(pageErrors.findIndex((e) => e.includes("status of 400")), 1);
    await setValue("#snapshot-form input[name=snapshot_path]", snapPath);
    await page.click("#snapshot-form button[type=submit]");
    await page.waitForSelector("#snapshot-dialog:not([open])", { timeout: 30_000 });
    await page.waitForFunction((p) => document.getElementById("snapshot-note").textContent.includes(`Last snapshot: ${p}`), { timeout: 10_000 }, snapPath);
    await waitForCell(page, "vm1", "state", "Running");

    // Restore it: the dialog offers that snapshot; the new VM is listed and selected, and its guest echoes.
    await page.click('#actions button[data-action="restore"]');
    await page.waitForSelector("#restore-dialog[open]");
    assert.deepEqual(
      [await value("#restore-form input[name=snapshot_path]"), await value("#restore-form input[name=mem_file_path]"), await value("#restore-form input[name=name]")],
      [snapPath, memPath, "echo-restored"],
    );
    await page.click("#restore-form button[type=submit]");
    await waitForCell(page, "vm3", "state", "Running");
    assert.equal(await cell(page, "vm3", "name"), "echo-restored");
    await page.waitForFunction(() => window.location.hash === "#vm3", { timeout: 5000 });
    assert.match(await page.$eval("#snapshot-note", (e) => e.textContent ?? ""), new RegExp(`Restored from ${snapPath}`));
    await page.click("#terminal");
    await page.keyboard.type("restored guest");
    await waitForTerminal(page, "RESTORED GUEST");
    // The header's Restore opens the same dialog, for any snapshot, the new VM's name left to the user.
    await page.click("#restore-vm");
    await page.waitForSelector("#restore-dialog[open]");
    assert.equal(await value("#restore-form input[name=name]"), "");
    await page.click("#restore-cancel");
    await page.waitForSelector("#restore-dialog:not([open])");

    // Back to the first VM; keep typing for a few seconds so the plots have something to show.
    await selectRow(page, "vm1");
    await waitForTerminal(page, "HELLO FROM THE BROWSER");
    assert.equal((await terminalText(page)).includes("RESTORED GUEST"), false, "the restored VM's console is its own");
    for (let i = 0; i < 4; i++) {
      await page.click("#terminal");
      await page.keyboard.type(`line ${i} `);
      await new Promise((r) => setTimeout(r, 700));
    }
    await waitForTerminal(page, "LINE 3");
    await new Promise((r) => setTimeout(r, 1200));
    await page.screenshot({ path: path.join(ARTIFACTS, "list.png"), clip: await clipOf(page, "header", "#list-panel") });
    await page.screenshot({ path: path.join(ARTIFACTS, "console.png"), clip: await clipOf(page, "#vm-view", "#terminal") });
    await page.screenshot({ path: path.join(ARTIFACTS, "plots.png"), clip: await clipOf(page, "#plots", "#plots") });

    // Pause: the state changes and the exit counters stop (two more samples, same total).
    await page.click('#actions button[data-action="pause"]');
    await waitForCell(page, "vm1", "state", "Paused");
    assert.equal(await page.$eval("#vm-state", (s) => s.textContent), "Paused");
    await new Promise((r) => setTimeout(r, 1200));
    const pausedAt = await exitsTotal(page, "vm1");
    const pausedCell = await cell(page, "vm1", "exits");
    await page.click("#terminal");
    await page.keyboard.type("z");
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(await exitsTotal(page, "vm1"), pausedAt, "no exits while paused");
    assert.equal(await cell(page, "vm1", "exits"), pausedCell);
    assert.equal((await terminalText(page)).includes("Z"), false, "a paused guest does not echo");

    // Resume: the guest runs on and echoes what was typed while it was paused.
    await page.click('#actions button[data-action="resume"]');
    await waitForCell(page, "vm1", "state", "Running");
    await waitForTerminal(page, "Z");

    // A narrower window refits the terminal to its box (fewer columns), output intact.
    const screenWidth = () => page.$eval("#terminal .xterm-screen", (e) => (e as HTMLElement).clientWidth);
    const wide = await screenWidth();
    await page.setViewport({ width: 800, height: 1000 });
    await page.waitForFunction((before) => document.querySelector("#terminal .xterm-screen").clientWidth < before - 100, { timeout: 5000 }, wide);
    await waitForTerminal(page, "LINE 3");
    await page.setViewport({ width: 1280, height: 1000 });

    // Stop: the VM ends, the terminal says so, the other VM runs on.
    await page.click('#actions button[data-action="stop"]');
    await waitForCell(page, "vm1", "state", "Stopped");
    await waitForTerminal(page, "the VM has ended");
    assert.match(await page.$eval("#exit", (e) => e.textContent ?? ""), /Ended: stopped/);
    assert.equal(await cell(page, "vm2", "state"), "Running");
    assert.equal(await cell(page, "vm3", "state"), "Running");
    assert.deepEqual(pageErrors, []);
  } finally {
    await browser?.close();
    petasan.child.kill("SIGTERM");
    const end = await petasan.finished;
    rmSync(snapshots, { recursive: true, force: true });
    assert.equal(end.code, 0, end.stderr);
    assert.match(end.stdout, /stopping its VMs/);
  }
});

/** The page region from the top of `first` to the bottom of `last`, full width. */
async function clipOf(page: Page, first: string, last: string): Promise<{ x: number; y: number; width: number; height: number }> {
  return page.evaluate((a, b) => {
    const top = document.querySelector(a)!.getBoundingClientRect();
    const bottom = document.querySelector(b)!.getBoundingClientRect();
    const y = Math.max(0, top.top + window.scrollY - 8);
    return { x: 0, y, width: document.documentElement.clientWidth, height: bottom.bottom + window.scrollY + 4 - y };
  }, first, last);
}
