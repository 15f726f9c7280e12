import { test } from "node:test";
import assert from "node:assert/strict";
import { close } from "../../sys/libc.js";
import { drainEventFd, newEventFd, signalEventFd } from "../../sys/eventfd.js";
import { EventLoop } from "./event-loop.js";
import { VmFds } from "./vm-fds.js";

test("a VM's handler that throws ends that VM alone: its fds leave the loop, another VM's handlers run on", () => {
  const loop = new EventLoop();
  const [fa, fb, stopFd] = [newEventFd(), newEventFd(), newEventFd()];
  try {
    const failures: unknown[] = [];
    const a: VmFds = new VmFds(loop, (e) => {
      failures.push(e);
      a.close();
    });
    const b = new VmFds(loop, () => assert.fail("b never fails"));
    let bServed = 0;
    a.add(fa, () => {
      throw new Error("a device's bug");
    });
    b.add(fb, () => {
      drainEventFd(fb);
      bServed++;
    });
    loop.add(stopFd, () => {
      drainEventFd(stopFd);
      loop.stop();
    });
    // Both in one batch: b is served although a threw.
    signalEventFd(fa);
    signalEventFd(fb);
    signalEventFd(stopFd);
    loop.run();
    assert.equal(failures.length, 1);
    assert.equal((failures[0] as Error).message, "a device's bug");
    assert.equal(bServed, 1);
    // a is off the loop (its eventfd is still readable, never drained): only b is served now.
    signalEventFd(fb);
    signalEventFd(stopFd);
    loop.run();
    assert.equal(failures.length, 1);
    assert.equal(bServed, 2);
    assert.throws(() => a.add(fa, () => {}), /closed/);
  } finally {
    for (const fd of [fa, fb, stopFd]) close(fd);
    loop.close();
  }
});

test("the loop serves the whole batch it was woken with even when a handler stops it, and runs again", () => {
  const loop = new EventLoop();
  const fds = [newEventFd(), newEventFd(), newEventFd()];
  try {
    const served: number[] = [];
    fds.forEach((fd, i) => loop.add(fd, () => {
      drainEventFd(fd);
      served.push(i);
      loop.stop();
    }));
    for (const fd of fds) signalEventFd(fd);
    loop.run();
    assert.deepEqual(served.sort(), [0, 1, 2]);
    signalEventFd(fds[1]);
    loop.run();
    assert.deepEqual(served.sort(), [0, 1, 1, 2]);
  } finally {
    for (const fd of fds) close(fd);
    loop.close();
  }
});
