// The tables' limits: an index entry's reference is below 2^25 (the bits
// above hold a second tag of its hash, assembly/table/bucket-index.ts), so a
// data plane takes at most 2^24 flows (two references each) and refuses more
// with a clear error instead of building an index whose references would
// run into their tags.

import { test } from "node:test";
import assert from "node:assert/strict";
import { DataPlane } from "../../src/core/dataplane.js";
import { DataPlaneError } from "../../src/errors.js";

test("a data plane takes 2^24 flows and refuses 2^24 + 1, naming the limit", () => {
  const most = new DataPlane({ capacity: { flows: 2 ** 24, groups: 4, targets: 16 } });
  assert.ok(most.memoryBytes() >= 2 ** 24 * 69, `${most.memoryBytes()} bytes for 2^24 flows`); // a record and its index share each
  assert.throws(() => new DataPlane({ capacity: { flows: 2 ** 24 + 1, groups: 4, targets: 16 } }),
    (e: unknown) => e instanceof DataPlaneError && /16777217 flows.*at most 16777216 flows/.test(e.message));
});

test("a data plane refuses more than 2^25 groups or targets", () => {
  for (const capacity of [{ flows: 1024, groups: 2 ** 25 + 1, targets: 16 }, { flows: 1024, groups: 4, targets: 2 ** 25 + 1 }]) {
    assert.throws(() => new DataPlane({ capacity }), (e: unknown) => e instanceof DataPlaneError && /at most .* groups or targets/.test(e.message));
  }
});
