// The flow index's hash (assembly/hash.ts flowHash; the model's copy in
// src/reference/hash.ts, which the differential tests hold to the core's
// through the NAT ports it seeds) must spread the tuples a proxy really sees
// (clients counting up, one client's ports, a target's NAT bindings; IPv4
// and IPv6) like a random function over what the index reads of it: the
// low byte (the bucket's tag), the top bits (the home bucket, and the
// prefetch's slot of recent inserts). A chi-square per degree of freedom
// near 1 is what a random function gives (its spread here is about 0.1).

import { test } from "node:test";
import assert from "node:assert/strict";
import { flowHash } from "../../src/reference/hash.js";

const KEYS = 1 << 16;

/** Chi-square per degree of freedom of `bins` counts of KEYS values. */
function chi2(bins: Uint32Array): number {
  const expected = KEYS / bins.length;
  let c = 0;
  for (const n of bins) c += (n - expected) ** 2 / expected;
  return c / (bins.length - 1);
}

const v4 = (a: number, b: number, c: number, d: number): Uint8Array => Uint8Array.of(a, b, c, d);
const v6 = (i: number): Uint8Array => {
  const a = new Uint8Array(16);
  a[0] = 0xfd;
  a[14] = (i >> 8) & 255;
  a[15] = i & 255;
  return a;
};

const loads: [string, (i: number) => number][] = [
  ["IPv4 clients counting up, one port each", (i) => flowHash(4, v4(10, 0, i >> 8, i & 255), v4(198, 51, 100, 10), 1024, 53, 17)],
  ["one IPv4 client's source ports", (i) => flowHash(4, v4(10, 0, 0, 1), v4(198, 51, 100, 10), i, 80, 6)],
  ["a target's NAT bindings (its replies to the proxy's ports)", (i) => flowHash(4, v4(192, 0, 2, 11), v4(198, 51, 100, 1), 8080, i, 6)],
  ["IPv6 clients counting up", (i) => flowHash(6, v6(i), v6(0x10000 - 1), 1024, 443, 6)],
];

for (const [name, hash] of loads) {
  test(`the flow hash of ${name} spreads like a random function over the tag byte and the top bits (chi-square per degree of freedom under 1.5)`, () => {
    const tags = new Uint32Array(256);
    const top = new Uint32Array(1024);
    for (let i = 0; i < KEYS; i++) {
      const h = hash(i);
      assert.ok(Number.isInteger(h) && h >= 0 && h < 2 ** 32);
      tags[h & 255]++;
      top[h >>> 22]++;
    }
    assert.ok(chi2(tags) < 1.5, `tags: ${chi2(tags).toFixed(2)}`);
    assert.ok(chi2(top) < 1.5, `top bits: ${chi2(top).toFixed(2)}`);
  });
}
