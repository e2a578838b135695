// Peer discovery: "k members of group G, excluding this list", random or nearest.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { pickMembers, prefixDistance } from "../../src/control/discovery.js";
import { Authenticator } from "../../src/control/auth.js";
import type { DiscoverReplyMessage } from "../../src/control/message.js";
import { epKey } from "../../src/control/ta.js";
import { ep, GROUP, ip4, KEY, prng, RUNS, targetAt } from "./arbitraries.js";
import { ANYCAST, cluster } from "./cluster.js";

describe("member selection", () => {
  test("at most k distinct members, none excluded, as many as available", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 1000 }), { maxLength: 50 }),
        fc.array(fc.integer({ min: 0, max: 1000 }), { maxLength: 20 }),
        fc.integer({ min: 0, max: 60 }),
        fc.constantFrom("random", "nearest") as fc.Arbitrary<"random" | "nearest">,
        fc.integer(),
        (members, excluded, k, mode, seed) => {
          const ex = new Set(excluded);
          const got = pickMembers(members, k, { mode, exclude: (m) => ex.has(m), distance: (m) => m, random: prng(seed) });
          assert.equal(new Set(got).size, got.length);
          for (const m of got) assert.ok(members.includes(m) && !ex.has(m));
          assert.equal(got.length, Math.min(k, members.filter((m) => !ex.has(m)).length));
        },
      ),
      { numRuns: RUNS },
    );
  });

  test("nearest returns the k smallest distances", () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 1000 }), { maxLength: 50 }), fc.integer({ min: 1, max: 10 }), (members, k) => {
        const got = pickMembers(members, k, { mode: "nearest", distance: (m) => Math.abs(m - 500) });
        const best = [...members].sort((a, b) => Math.abs(a - 500) - Math.abs(b - 500)).slice(0, k);
        assert.deepEqual(got.map((m) => Math.abs(m - 500)), best.map((m) => Math.abs(m - 500)));
      }),
      { numRuns: RUNS },
    );
  });

  test("random selection is uniform: every member is picked about equally often", () => {
    const members = Array.from({ length: 10 }, (_, i) => i);
    const counts = new Array(10).fill(0);
    const random = prng(42);
    const rounds = 20_000;
    for (let r = 0; r < rounds; r++) for (const m of pickMembers(members, 3, { mode: "random", random })) counts[m]++;
    const mean = (rounds * 3) / 10;
    for (const c of counts) assert.ok(Math.abs(c - mean) < 5 * Math.sqrt(mean), `${counts}`);
  });

  test("prefix distance counts the bits after the longest common prefix", () => {
    assert.equal(prefixDistance(ip4(10, 0, 0, 1), ip4(10, 0, 0, 1)), 0);
    assert.equal(prefixDistance(ip4(10, 0, 0, 0), ip4(10, 0, 0, 1)), 1);
    assert.equal(prefixDistance(ip4(10, 0, 1, 0), ip4(10, 0, 0, 0)), 9);
    assert.equal(prefixDistance(ip4(138, 0, 0, 0), ip4(10, 0, 0, 0)), 32);
    assert.equal(prefixDistance(ip4(10, 0, 0, 0), new Uint8Array(16)), 129);
  });
});

describe("discovery through the proxies", () => {
  function setup() {
    const c = cluster(4, { groups: [{ ta: GROUP, key: KEY }] });
    c.advance(3000);
    // Targets 10.0.0.1-3 nearest to ap-1, 10.0.0.4-5 nearest to ap-2.
    for (const [last, at] of [[1, 1], [2, 1], [3, 1], [4, 2], [5, 2]]) c.addJoiner(GROUP, KEY, last, at, targetAt(last, 6881));
    for (const j of c.joiners) j.start();
    c.advance(1000);
    const replies: DiscoverReplyMessage[] = [];
    const peer = ep(ip4(10, 0, 0, 2), 50000); // the peer is member 10.0.0.2 itself, near ap-1
    c.setHome(peer, 1);
    const auth = new Authenticator({ groupKey: () => KEY, now: c.net.now });
    c.net.attach(peer, (_from, bytes) => {
      const r = auth.open(bytes);
      if (r.ok && r.message.type === "discover-reply") replies.push(r.message);
    });
    const ask = (k: number, mode: "random" | "nearest", exclude: number[] = []) => {
      c.net.send(peer, ANYCAST, auth.seal({ type: "discover", ta: GROUP, k, mode, exclude: exclude.map((l) => targetAt(l, 6881).endpoint) }));
      c.advance(200, 10);
    };
    return { c, replies, ask, peer };
  }
  const got = (replies: DiscoverReplyMessage[]) => replies.flatMap((r) => r.members.map((m) => epKey(m.endpoint))).sort();

  test("the nearest proxy answers with its own members, never the asker itself, and leaves out the exclude list", () => {
    const { replies, ask } = setup();
    ask(1, "nearest", [1]);
    assert.deepEqual(got(replies), ["10.0.0.3:6881"]);
  });

  test("when the nearest proxy has too few members it forwards the rest of the query to another JAP, which answers the asker directly", () => {
    const { c, replies, ask } = setup();
    c.nodes[1].resolve(GROUP); // the IAP cache of ap-1 knows the group's JAPs
    c.advance(200, 10);
    ask(4, "nearest");
    assert.deepEqual(got(replies), ["10.0.0.1:6881", "10.0.0.3:6881", "10.0.0.4:6881", "10.0.0.5:6881"]);
    assert.equal(replies.length, 2, "one answer from each JAP");
  });

  test("repeated queries excluding what was found discover every other member exactly once", () => {
    const { c, replies, ask } = setup();
    c.nodes[1].resolve(GROUP);
    c.advance(200, 10);
    const found: number[] = [];
    for (let i = 0; i < 6; i++) {
      replies.length = 0;
      ask(1, "random", [2, ...found]);
      for (const m of replies.flatMap((r) => r.members)) found.push(m.endpoint.address[3]);
    }
    assert.deepEqual(found.sort(), [1, 3, 4, 5]);
  });
});
