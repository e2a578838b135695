// Rendezvous (HRW) hashing of group TAs over the live proxies.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { raps, Ring, taHash } from "../../src/control/rendezvous.js";
import type { TransportAddress } from "../../src/control/ta.js";
import { RUNS, ta } from "./arbitraries.js";

const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `ap-${i}`);
const tcpTa = (i: number): TransportAddress => ({ protocol: "tcp", address: Uint8Array.of(203, 0, (i >> 8) & 255, i & 255), port: 80 + (i >> 16) });

describe("rendezvous hashing", () => {
  test("the RAP set is a deterministic function of the TA and the set of proxies, not their order", () => {
    fc.assert(
      fc.property(ta(), fc.uniqueArray(fc.string({ minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 20 }), fc.integer({ min: 1, max: 4 }), (t, ps, r) => {
        const a = raps(t, ps, r);
        assert.deepEqual(raps(t, [...ps].reverse(), r), a);
        assert.equal(a.length, Math.min(r, ps.length));
        assert.equal(new Set(a).size, a.length);
        for (const id of a) assert.ok(ps.includes(id));
      }),
      { numRuns: RUNS },
    );
  });

  test("the replicas are the next proxies of the same ranking (top R is a prefix of top R+1)", () => {
    fc.assert(
      fc.property(ta(), fc.integer({ min: 2, max: 30 }), (t, n) => {
        const ring = new Ring(ids(n));
        const all = ring.raps(t, n);
        for (let r = 1; r <= n; r++) assert.deepEqual(ring.raps(t, r), all.slice(0, r));
      }),
      { numRuns: RUNS },
    );
  });

  test("when one proxy leaves, only the groups whose RAP set contained it change RAP set, and they keep the survivors in order", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.string({ minLength: 1, maxLength: 8 }), { minLength: 2, maxLength: 40 }),
        fc.array(ta(), { minLength: 1, maxLength: 40 }),
        fc.nat(),
        fc.integer({ min: 1, max: 3 }),
        (ps, tas, pick, r) => {
          const gone = ps[pick % ps.length];
          const before = new Ring(ps);
          const after = new Ring(ps.filter((p) => p !== gone));
          for (const t of tas) {
            const a = before.raps(t, r);
            const b = after.raps(t, r);
            if (!a.includes(gone)) assert.deepEqual(b, a, "a group that did not rank the leaver must not move");
            else {
              assert.ok(!b.includes(gone));
              assert.deepEqual(b.slice(0, a.length - 1), a.filter((x) => x !== gone), "survivors keep their rank");
            }
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  test("when a proxy joins, only the groups that rank it in their top R change RAP set", () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.string({ minLength: 1, maxLength: 8 }), { minLength: 2, maxLength: 40 }), fc.array(ta(), { minLength: 1, maxLength: 40 }), (ps, tas) => {
        const [joiner, ...rest] = ps;
        const before = new Ring(rest);
        const after = new Ring(ps);
        for (const t of tas) {
          const b = after.raps(t, 2);
          if (!b.includes(joiner)) assert.deepEqual(b, before.raps(t, 2));
        }
      }),
      { numRuns: RUNS },
    );
  });

  test("load is spread: each of N proxies is primary RAP for 1/N of many TAs, within 5 standard deviations", () => {
    for (const n of [3, 10, 50]) {
      const ring = new Ring(ids(n));
      const m = 30_000;
      const counts = new Map<string, number>();
      for (let i = 0; i < m; i++) {
        const [p] = ring.raps(tcpTa(i), 1);
        counts.set(p, (counts.get(p) ?? 0) + 1);
      }
      const mean = m / n;
      const sd = Math.sqrt(m * (1 / n) * (1 - 1 / n));
      assert.equal(counts.size, n, "every proxy is primary for some TAs");
      for (const [p, c] of counts) assert.ok(Math.abs(c - mean) < 5 * sd, `n=${n}: ${p} is primary for ${c} TAs, expected ${mean.toFixed(0)} +- ${(5 * sd).toFixed(0)}`);
      // Chi-square goodness of fit against uniform, df = n-1: well under the 99.9th percentile
      // (about df + 3.1 sqrt(2 df) + 5 for these df).
      const chi = [...counts.values()].reduce((s, c) => s + (c - mean) ** 2 / mean, 0);
      assert.ok(chi < n - 1 + 3.1 * Math.sqrt(2 * (n - 1)) + 5, `n=${n}: chi-square ${chi.toFixed(1)}`);
    }
  });

  test("the TA hash depends on every field (protocol, address, port)", () => {
    const base: TransportAddress = { protocol: "tcp", address: Uint8Array.of(203, 0, 113, 10), port: 80 };
    const h = (t: TransportAddress): string => { const x = taHash(t); return `${x.hi}:${x.lo}`; };
    const seen = new Set([h(base), h({ ...base, protocol: "udp" }), h({ ...base, port: 81 }), h({ ...base, address: Uint8Array.of(203, 0, 113, 11) })]);
    assert.equal(seen.size, 4);
  });
});
