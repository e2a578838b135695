// Rate-limited log lines: one line per kind and interval, with the count of what it stood for.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { LogLimiter } from "../../src/daemon/log-limit.js";

describe("log limiter", () => {
  test("a flood of one kind of event writes one line per interval, and the next line (or flush) carries the count of those not written", () => {
    let t = 0;
    const out: [Record<string, unknown>, string][] = [];
    const l = new LogLimiter((f, m) => out.push([f, m]), 10_000, () => t);
    for (let i = 0; i < 100_000; i++) l.event("no-jap", { group: `g${i}` }, "no JAP for group");
    l.event("other", { x: 1 }, "other kind");
    assert.deepEqual(out, [[{ group: "g0" }, "no JAP for group"], [{ x: 1 }, "other kind"]], "another kind has its own budget");
    l.flush();
    assert.equal(out.length, 2, "nothing before the interval is over");
    t = 10_000;
    l.flush();
    assert.deepEqual(out[2], [{ group: "g99999", suppressed: 99_999, intervalMs: 10_000 }, "no JAP for group"]);
    assert.equal(l.suppressedTotal, 99_999);
    t = 20_000;
    l.event("no-jap", { group: "late" }, "no JAP for group");
    assert.deepEqual(out[3], [{ group: "late" }, "no JAP for group"], "a quiet kind logs at once again, with no count");
  });
});
