import { test } from "node:test";
import assert from "node:assert/strict";
import { Worker } from "node:worker_threads";
import { SharedState, sharedFields, SharedCounters } from "./shared-state.js";

/** Two threads each add to a plain (non-atomic) word under the lock: without mutual exclusion, increments are lost. */
const HAMMER = `
const { workerData, parentPort } = require("node:worker_threads");
import(workerData.module).then(({ SharedState }) => {
  const s = new SharedState(workerData.buffer, 2);
  for (let i = 0; i < workerData.rounds; i++) {
    s.lock();
    const v = s.words[1];
    for (let j = 0; j < 20; j++) Math.sqrt(j); // widen the window a lost update needs
    s.words[1] = v + 1;
    s.unlock();
  }
  parentPort.postMessage("done");
});
`;

test("the lock serializes threads: no increment of a plain word is lost", async () => {
  const buffer = SharedState.allocate(2);
  const rounds = 100_000;
  const run = () => new Promise<void>((resolve, reject) => {
    const w = new Worker(HAMMER, { eval: true, workerData: { buffer, rounds, module: new URL("./shared-state.js", import.meta.url).href } });
    w.once("message", () => void w.terminate().then(() => resolve()));
    w.once("error", reject);
  });
  await Promise.all([run(), run()]);
  const s = new SharedState(buffer, 2);
  assert.equal(s.words[1], 2 * rounds);
  assert.equal(s.words[0], 0, "the lock is free afterwards");
});

class Registers {
  declare a: number;
  declare big: number;
  declare flag: boolean;
  constructor(readonly shared: SharedState) {}
}
const END = sharedFields(Registers, { a: "int", big: "uint", flag: "bool" });

test("shared fields: two objects over one buffer see each other's writes, with their kinds", () => {
  const buffer = SharedState.allocate(END + 2);
  const one = new Registers(new SharedState(buffer, END + 2));
  const two = new Registers(new SharedState(buffer, END + 2));
  one.a = -5;
  one.big = 0xffff_fff0;
  one.flag = true;
  assert.deepEqual([two.a, two.big, two.flag], [-5, 0xffff_fff0, true]);
  assert.equal(Object.keys(two).includes("a"), false, "no own property hides the accessor");
  const counters = new SharedCounters(one.shared, END, ["x", "y"] as const);
  counters.bump("y", 3);
  assert.deepEqual(new SharedCounters(two.shared, END, ["x", "y"] as const).read(), { x: 0, y: 3 });
});
