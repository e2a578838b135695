// Overlay frames on the host side (src/net/overlay-frame.ts, src/net/siphash.ts):
// the reference vectors of SipHash-2-4, and sealing and opening. That the
// core's frames agree byte for byte is test/properties/overlay.test.ts.

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { siphash24 } from "../../src/net/siphash.js";
import { openFrame, sealFrame, OverlayKind } from "../../src/net/overlay-frame.js";

const runs = Number(process.env.PIAS_FUZZ_RUNS ?? 200);

// The reference implementation's vectors_sip64: key 00..0f, message 00..n-1.
const VECTORS = [
  0x726fdb47dd0e0e31n, 0x74f839c593dc67fdn, 0x0d6c8009d9a94f5an, 0x85676696d7fb7e2dn, 0xcf2794e0277187b7n, 0x18765564cd99a68dn,
  0xcbc9466e58fee3cen, 0xab0200f58b01d137n, 0x93f5f5799a932462n, 0x9e0082df0ba9e4b0n, 0x7a5dbbc594ddb9f3n, 0xf4b32f46226bada7n,
  0x751e8fbc860ee5fbn, 0x14ea5627c0843d90n, 0xf723ca908e7af2een, 0xa129ca6149be45e5n, 0x3f2acc7f57c29bdbn, 0x699ae9f52cbe4794n,
];

test("SipHash-2-4 gives the reference vectors for messages of 0 to 17 bytes", () => {
  const key = Uint8Array.from({ length: 16 }, (_, i) => i);
  VECTORS.forEach((want, n) => assert.equal(siphash24(key, Uint8Array.from({ length: n }, (_, i) => i)), want, `${n} bytes`));
});

const key = fc.uint8Array({ minLength: 16, maxLength: 16 });
const kind = fc.constantFrom(OverlayKind.ClientData, OverlayKind.ClientReturn, OverlayKind.Reply, OverlayKind.SendOut);

test("a sealed frame opens with its key and gives back the packet, kind, flags, sender and time", () => {
  fc.assert(fc.property(key, kind, fc.uint8Array({ maxLength: 1500 }), fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 2 ** 31 }), fc.integer({ min: 0, max: 255 }), (k, kd, inner, sender, now, flags) => {
    const f = sealFrame(inner, kd, k, now, sender, flags);
    const o = openFrame(f, k, now + 30);
    assert.ok(o.ok);
    assert.deepEqual([o.kind, o.flags, o.sender, o.time], [kd, flags, sender, now]);
    assert.deepEqual(o.inner, inner);
  }), { numRuns: runs });
});

test("a frame with any bit flipped, opened with another key, or stamped outside the window does not open", () => {
  fc.assert(fc.property(key, key, fc.uint8Array({ minLength: 1, maxLength: 300 }), fc.nat(), fc.integer({ min: 0, max: 7 }), (k, other, inner, at, bit) => {
    const f = sealFrame(inner, OverlayKind.ClientData, k, 5000);
    const flipped = f.slice();
    flipped[at % f.length] ^= 1 << bit;
    const r = openFrame(flipped, k, 5000);
    assert.ok(!r.ok && (r.reason === "bad-tag" || r.reason === "malformed"));
    fc.pre(other.some((b, i) => b !== k[i]));
    assert.deepEqual(openFrame(f, other, 5000), { ok: false, reason: "bad-tag" });
    assert.deepEqual(openFrame(f, k, 5031), { ok: false, reason: "stale" });
    assert.deepEqual(openFrame(f, k, 4969), { ok: false, reason: "stale" });
    assert.deepEqual(openFrame(f.subarray(0, 23), k, 5000), { ok: false, reason: "malformed" });
  }), { numRuns: runs });
});
