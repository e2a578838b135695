// Authentication of control frames: HMAC-SHA-256 with timestamp and nonce.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Authenticator, ReplayCache, signFrame, macValid } from "../../src/control/auth.js";
import { encode, type Message } from "../../src/control/message.js";
import { sameTa, type TransportAddress } from "../../src/control/ta.js";
import { anyMessage, CLUSTER, GROUP, GROUP_B, KEY, KEY_B, RUNS, targetAt } from "./arbitraries.js";

const T0 = 1_700_000_000_000;

/** Two sides sharing keys: `a` signs, `b` verifies; each with its own clock. */
function pair(keys: { ta: TransportAddress; key: Uint8Array }[] = [{ ta: GROUP, key: KEY }], windowMs?: number) {
  const clock = { a: T0, b: T0 };
  const groupKey = (ta: TransportAddress) => keys.find((k) => sameTa(k.ta, ta))?.key;
  const a = new Authenticator({ clusterKey: CLUSTER, groupKey, now: () => clock.a, windowMs });
  const b = new Authenticator({ clusterKey: CLUSTER, groupKey, now: () => clock.b, windowMs });
  return { a, b, clock };
}

const join: Message = { type: "join", ta: GROUP, target: targetAt(5) };

/** The group key for any TA: every message kind can be signed in the property tests. */
const anyGroupKey = () => KEY;

describe("frame authentication", () => {
  test("a sealed frame opens on the other side and yields the message", () => {
    const { a, b } = pair();
    const r = b.open(a.seal(join));
    assert.equal(r.ok, true);
    assert.deepEqual(r.ok && r.message, join);
  });

  test("any single bit flip in a signed frame is rejected", () => {
    const clock = { now: T0 };
    const a = new Authenticator({ clusterKey: CLUSTER, groupKey: anyGroupKey, now: () => clock.now });
    fc.assert(
      fc.property(anyMessage(), fc.nat(), (m, bit) => {
        const frame = a.seal(m);
        const b = new Authenticator({ clusterKey: CLUSTER, groupKey: anyGroupKey, now: () => clock.now });
        assert.equal(b.open(frame.slice()).ok, true, "the unmodified frame is accepted");
        const c = new Authenticator({ clusterKey: CLUSTER, groupKey: anyGroupKey, now: () => clock.now });
        const flipped = frame.slice();
        const i = bit % (flipped.length * 8);
        flipped[i >> 3] ^= 1 << (i & 7);
        const r = c.open(flipped);
        assert.equal(r.ok, false, `bit ${i} of ${m.type} flipped and still accepted`);
        assert.ok(!r.ok && ["bad-mac", "malformed", "unknown-group"].includes(r.reason), !r.ok ? r.reason : "");
      }),
      { numRuns: RUNS },
    );
  });

  test("a replay of a captured frame is rejected as replayed, however often it is sent", () => {
    const { a, b, clock } = pair();
    const frame = a.seal(join);
    assert.equal(b.open(frame).ok, true);
    for (let i = 0; i < 3; i++) {
      clock.b += 1000;
      const r = b.open(frame.slice());
      assert.deepEqual(r.ok ? "accepted" : r.reason, "replayed");
    }
    assert.equal(b.rejections.counts.replayed, 3);
  });

  test("a timestamp outside the window either way is rejected as stale (default window 30 s)", () => {
    const { a, b, clock } = pair();
    clock.a = T0 - 30_001;
    const old = a.seal(join);
    clock.a = T0 + 30_001;
    const future = a.seal(join);
    clock.a = T0 - 29_999;
    const fresh = a.seal(join);
    assert.deepEqual([old, future, fresh].map((f) => { const r = b.open(f); return r.ok ? "ok" : r.reason; }), ["stale", "stale", "ok"]);
    assert.equal(b.rejections.counts.stale, 2);
  });

  test("a frame signed with another group's key is rejected", () => {
    // The attacker holds group B's key and claims to join group A.
    const attacker = new Authenticator({ groupKey: () => KEY_B, now: () => T0 });
    const { b } = pair([{ ta: GROUP, key: KEY }, { ta: GROUP_B, key: KEY_B }]);
    const r = b.open(attacker.seal(join));
    assert.deepEqual(r.ok ? "accepted" : r.reason, "bad-mac");
    // And group B's own join, with B's key, passes.
    assert.equal(b.open(attacker.seal({ ...join, ta: GROUP_B })).ok, true);
  });

  test("a join for a group whose key this proxy lacks is rejected as unknown-group", () => {
    const other = new Authenticator({ groupKey: () => KEY, now: () => T0 });
    const { b } = pair();
    const r = b.open(other.seal({ ...join, ta: GROUP_B }));
    assert.deepEqual(r.ok ? "accepted" : r.reason, "unknown-group");
  });

  test("the cluster key and a group key are not interchangeable", () => {
    // A target that knows only its join key cannot forge proxy traffic: a REGISTER signed with a group key fails.
    const register: Message = { type: "register", jap: { id: "evil", endpoint: targetAt(9).endpoint }, entries: [{ ta: GROUP, load: 1 }] };
    const frame = encode(register, { timestamp: T0, nonce: new Uint8Array(16).fill(3) });
    signFrame(frame, KEY);
    const { b } = pair();
    const r = b.open(frame);
    assert.deepEqual(r.ok ? "accepted" : r.reason, "bad-mac");
    signFrame(frame, CLUSTER);
    assert.equal(b.open(frame).ok, true);
  });

  test("a frame without a MAC, or too short to hold one, is rejected as malformed", () => {
    const { a, b } = pair();
    const frame = a.seal(join);
    const r = b.open(frame.subarray(0, frame.length - 32));
    assert.deepEqual(r.ok ? "accepted" : r.reason, "malformed");
    assert.deepEqual(((x) => (x.ok ? "ok" : x.reason))(b.open(new Uint8Array(10))), "malformed");
    assert.equal(macValid(new Uint8Array(5), KEY), false);
    assert.equal(b.rejections.counts.malformed, 2);
  });

  test("rejections are counted by reason", () => {
    const { a, b } = pair();
    const f = a.seal(join);
    b.open(f);
    b.open(f);
    b.open(new Uint8Array(3));
    const bad = a.seal(join);
    bad[bad.length - 1] ^= 1;
    b.open(bad);
    assert.deepEqual(b.rejections.counts, { "bad-mac": 1, stale: 0, replayed: 1, "unknown-group": 0, malformed: 1, "rate-limited": 0 });
    assert.equal(b.rejections.total, 3);
  });
});

describe("replay cache", () => {
  const nonce = (i: number): Uint8Array => {
    const n = new Uint8Array(16);
    new DataView(n.buffer).setUint32(0, i);
    return n;
  };

  test("it forgets nonces once their timestamp is out of the window", () => {
    const c = new ReplayCache(30_000, 1000);
    for (let i = 0; i < 100; i++) assert.equal(c.check(T0 + i, nonce(i), T0 + i), true);
    assert.equal(c.size, 100);
    c.check(T0 + 40_000, nonce(1000), T0 + 40_000);
    assert.equal(c.size, 1);
  });

  test("below capacity it answers exactly as a map of the nonces seen in the window would", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 5000 })), { maxLength: 600 }), (ops) => {
        const window = 30_000;
        const c = new ReplayCache(window, 1 << 20);
        const model = new Map<number, number>();
        let now = T0;
        for (const [id, dt] of ops) {
          now += dt;
          for (const [k, ts] of model) if (ts < now - window) model.delete(k);
          const expected = !model.has(id);
          if (expected) model.set(id, now);
          assert.equal(c.check(now, nonce(id), now), expected, `nonce ${id} at +${now - T0}`);
          assert.equal(c.size, model.size);
        }
      }),
      { numRuns: RUNS },
    );
  });

  test("it stays within its capacity and still rejects every replay of an evicted nonce", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 50 }), fc.array(fc.integer({ min: 0, max: 199 }), { minLength: 1, maxLength: 400 }), (capacity, order) => {
        const c = new ReplayCache(30_000, capacity);
        const accepted = new Set<number>();
        let t = T0;
        for (const i of order) {
          t += 1;
          // Frame i is always stamped with the same time: a resend of i is a byte-for-byte replay.
          const ok = c.check(T0 + i, nonce(i), t);
          if (ok) {
            assert.ok(!accepted.has(i), `nonce ${i} accepted twice`);
            accepted.add(i);
          }
          assert.ok(c.size <= capacity);
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe("HMAC-SHA-256", () => {
  test("hmacSha256 equals node:crypto's createHmac for any key and data (keys longer than a block included)", async () => {
    const { createHmac } = await import("node:crypto");
    const { hmacSha256 } = await import("../../src/control/auth.js");
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 100 }), fc.uint8Array({ maxLength: 3000 }), (key, data) => {
        assert.deepEqual(Buffer.from(hmacSha256(key, data)), createHmac("sha256", key).update(data).digest());
      }),
      { numRuns: RUNS },
    );
  });

  test("hmacSha256 matches RFC 4231 test case 2", async () => {
    const { hmacSha256 } = await import("../../src/control/auth.js");
    const mac = hmacSha256(Buffer.from("Jefe"), Buffer.from("what do ya want for nothing?"));
    assert.equal(Buffer.from(mac).toString("hex"), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  });
});
