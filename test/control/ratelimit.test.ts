// Per-source token buckets in front of the HMAC.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { RateLimiter } from "../../src/control/ratelimit.js";
import { RUNS } from "./arbitraries.js";

describe("rate limiting", () => {
  test("a source may send a burst, then is dropped and counted until tokens refill", () => {
    const rl = new RateLimiter({ ratePerSecond: 2, burst: 5 });
    const results = Array.from({ length: 8 }, () => rl.allow("10.0.0.1", 0));
    assert.deepEqual(results, [true, true, true, true, true, false, false, false]);
    assert.equal(rl.dropped, 3);
    assert.equal(rl.allow("10.0.0.1", 499), false, "less than one token after 0.499 s at 2/s");
    assert.equal(rl.allow("10.0.0.1", 1000), true, "two tokens after 1 s");
    assert.equal(rl.allow("10.0.0.1", 1000), true);
    assert.equal(rl.allow("10.0.0.1", 1000), false);
    assert.equal(rl.dropped, 5);
  });

  test("one source's flood does not cost another source its tokens", () => {
    const rl = new RateLimiter({ ratePerSecond: 1, burst: 2 });
    for (let i = 0; i < 100; i++) rl.allow("attacker", 0);
    assert.equal(rl.allow("target", 0), true);
    assert.equal(rl.allow("target", 0), true);
  });

  test("the number of tracked sources is bounded; the source tracked longest ago is evicted", () => {
    const rl = new RateLimiter({ ratePerSecond: 1, burst: 1, maxSources: 3 });
    rl.allow("a", 0);
    rl.allow("b", 0);
    rl.allow("c", 0);
    rl.allow("d", 0); // evicts a
    assert.equal(rl.sources, 3);
    assert.equal(rl.evicted, 1);
    assert.equal(rl.allow("b", 0), false, "b was kept, with its empty bucket");
    assert.equal(rl.allow("a", 0), true, "a was forgotten and starts with a full bucket");
    assert.equal(rl.evicted, 2, "and tracking a again evicted b");
    for (let i = 0; i < 10_000; i++) rl.allow(`s${i}`, 0);
    assert.equal(rl.sources, 3);
  });

  test("over any arrival pattern, a source gets at most burst + rate x elapsed frames through", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 10 }),
        fc.array(fc.tuple(fc.constantFrom("a", "b", "c"), fc.integer({ min: 0, max: 500 })), { maxLength: 300 }),
        (rate, burst, events) => {
          const rl = new RateLimiter({ ratePerSecond: rate, burst });
          let t = 0;
          const passed: Record<string, number> = { a: 0, b: 0, c: 0 };
          for (const [src, dt] of events) {
            t += dt;
            if (rl.allow(src, t)) passed[src]++;
          }
          for (const src of ["a", "b", "c"]) assert.ok(passed[src] <= burst + (rate * t) / 1000 + 1e-9, `${src}: ${passed[src]}`);
          assert.equal(rl.allowed + rl.dropped, events.length);
        },
      ),
      { numRuns: RUNS },
    );
  });
});
