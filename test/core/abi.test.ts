import { test } from "node:test";
import assert from "node:assert/strict";
import { DataPlane } from "../../src/core/dataplane.js";
import { ABI_VALUES } from "../../src/core/abi.js";
import { CounterLayout, Counts, Desc, Layout, Reason, Stat } from "../../assembly/shared/abi.js";

test("the core and the host agree on every ABI layout value (asc and tsc read assembly/shared/abi.ts alike)", () => {
  const core = new DataPlane({ capacity: { flows: 16, groups: 1, targets: 1 } }).abiValues();
  assert.equal(core.length, ABI_VALUES.length, "abi_values() and ABI_VALUES list different numbers of values");
  ABI_VALUES.forEach(([name, value], i) => assert.equal(core[i], value, `${name}: core ${core[i]}, host ${value}`));
});

test("the layouts are consistent: descriptor fields inside a descriptor, counters inside their slots", () => {
  assert.ok(Desc.AUX + 2 <= Layout.DESC_SIZE);
  assert.equal(CounterLayout.STAT_BASE, CounterLayout.REASON_SLOTS * 8);
  assert.equal(CounterLayout.BYTES, (CounterLayout.REASON_SLOTS + CounterLayout.STAT_SLOTS) * 8);
  assert.ok(Counts.REASON_COUNT <= CounterLayout.REASON_SLOTS);
  assert.ok(Stat.COUNT <= CounterLayout.STAT_SLOTS);
  const reasons = Object.values(Reason).filter((v) => typeof v === "number") as number[];
  assert.equal(Math.max(...reasons) + 1, Counts.REASON_COUNT, "Counts.REASON_COUNT is one past the last Reason");
});
