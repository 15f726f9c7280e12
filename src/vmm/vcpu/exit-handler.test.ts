import { test } from "node:test";
import assert from "node:assert/strict";
import { EXIT, IO_IN, IO_OUT, type KvmRunView } from "../../kvm/run.js";
import { EXIT_COUNTERS } from "./control.js";
import { handleExit, type ExitServices } from "./exit-handler.js";

/** kvm_run as handleExit reads it, set by the test. */
function fakeRun(fields: Partial<Record<string, unknown>>): KvmRunView {
  return { exitReason: EXIT.IO, ioDirection: IO_OUT, mmioIsWrite: false, failEntryReason: 0x21n, internalSuberror: 1, internalData: () => [0x1234n], systemEventType: 1, ...fields } as unknown as KvmRunView;
}

function services(here: boolean) {
  const counts: Record<string, number> = {};
  const calls: string[] = [];
  const s: ExitServices = {
    counters: { bump: (slot: number) => { counts[EXIT_COUNTERS[slot]] = (counts[EXIT_COUNTERS[slot]] ?? 0) + 1; } },
    servePio: () => (calls.push("pio"), here),
    serveMmio: () => (calls.push("mmio"), here),
    handOver: () => void calls.push("hand over"),
  };
  return { s, counts, calls };
}

test("a register exit is served here when this thread can; otherwise handed over; either way counted by kind", () => {
  const here = services(true);
  assert.deepEqual(handleExit(fakeRun({ exitReason: EXIT.IO, ioDirection: IO_IN }), here.s), { kind: "continue" });
  assert.deepEqual(handleExit(fakeRun({ exitReason: EXIT.MMIO, mmioIsWrite: true }), here.s), { kind: "continue" });
  assert.deepEqual(here.calls, ["pio", "mmio"]);
  assert.deepEqual(here.counts, { io_in: 1, mmio_write: 1 });

  const there = services(false);
  handleExit(fakeRun({ exitReason: EXIT.IO, ioDirection: IO_OUT }), there.s);
  handleExit(fakeRun({ exitReason: EXIT.MMIO, mmioIsWrite: false }), there.s);
  assert.deepEqual(there.calls, ["pio", "hand over", "mmio", "hand over"]);
  assert.deepEqual(there.counts, { io_out: 1, mmio_read: 1, handed_over: 2 });
});

test("interrupted and halted exits go on; faults end the loop with a reason; system events are passed up", () => {
  const { s, counts } = services(true);
  assert.equal(handleExit(fakeRun({ exitReason: EXIT.INTR }), s).kind, "continue");
  assert.equal(handleExit(fakeRun({ exitReason: EXIT.HLT }), s).kind, "continue");
  assert.deepEqual(counts, { intr: 1, hlt: 1 });
  assert.match((handleExit(fakeRun({ exitReason: EXIT.SHUTDOWN }), s) as { reason: string }).reason, /triple fault/);
  assert.match((handleExit(fakeRun({ exitReason: EXIT.FAIL_ENTRY }), s) as { reason: string }).reason, /entry failure reason 0x21/);
  assert.match((handleExit(fakeRun({ exitReason: EXIT.INTERNAL_ERROR }), s) as { reason: string }).reason, /suberror 1 \(KVM could not emulate.*data: 0x1234/);
  assert.deepEqual(handleExit(fakeRun({ exitReason: EXIT.SYSTEM_EVENT, systemEventType: 2 }), s), { kind: "system-event", type: 2 });
  assert.match((handleExit(fakeRun({ exitReason: EXIT.NMI }), s) as { reason: string }).reason, /unexpected KVM exit NMI/);
  assert.equal((counts as Record<string, number>).other, 1);
});
