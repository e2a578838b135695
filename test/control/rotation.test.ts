// Key rotation: two valid keys during a window, for the cluster key and for a
// group's join key, with nothing rejected when the steps are followed.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { Authenticator, type KeySet } from "../../src/control/auth.js";
import type { Message } from "../../src/control/message.js";
import { CLUSTER, GROUP, KEY, targetAt } from "./arbitraries.js";
import { cluster } from "./cluster.js";

const T0 = 1_700_000_000_000;
const NEXT = new Uint8Array(32).fill(0x42);
const OTHER = new Uint8Array(32).fill(0x66);
const join: Message = { type: "join", ta: GROUP, target: targetAt(5) };
const heartbeat: Message = { type: "heartbeat", from: { id: "ap-0", endpoint: { address: Uint8Array.of(192, 0, 2, 1), port: 7400 } }, incarnation: 1, known: [] };

function signer(clusterKey: KeySet, groupKey: KeySet): Authenticator {
  return new Authenticator({ clusterKey, groupKey: () => groupKey, now: () => T0 });
}

describe("two valid keys", () => {
  test("a frame signed with either key of the set is accepted and open() names the key; a third key is rejected bad-mac", () => {
    const verifier = signer([NEXT, CLUSTER], [NEXT, KEY]);
    for (const [i, k] of [NEXT, KEY].entries()) {
      const r = verifier.open(signer(CLUSTER, k).seal(join));
      assert.ok(r.ok);
      assert.equal(r.ok && r.keyIndex, i);
    }
    for (const [i, k] of [NEXT, CLUSTER].entries()) {
      const r = verifier.open(signer(k, KEY).seal(heartbeat));
      assert.equal(r.ok && r.keyIndex, i);
    }
    assert.deepEqual(verifier.open(signer(CLUSTER, OTHER).seal(join)), { ok: false, reason: "bad-mac", detail: undefined });
    assert.equal(verifier.open(signer(OTHER, KEY).seal(heartbeat)).ok, false);
  });

  test("seal() signs with the first key unless told which, and setClusterKey() swaps the set", () => {
    const a = signer([NEXT, CLUSTER], [NEXT, KEY]);
    assert.equal(signer(NEXT, NEXT).open(a.seal(join)).ok, true);
    assert.equal(signer(KEY, KEY).open(a.seal(join, 1)).ok, true);
    assert.equal(signer(KEY, KEY).open(a.seal(join)).ok, false);
    a.setClusterKey(OTHER);
    assert.equal(signer(OTHER, KEY).open(a.seal(heartbeat)).ok, true);
  });
});

describe("rotation across a cluster", () => {
  test("join key: during the window a JAP answers each target with the key it signed with, old and new targets stay joined; after it the old key is refused", () => {
    let keys: KeySet = KEY;
    const c = cluster(3, { groups: [], node: { groupKey: () => keys } });
    c.advance(3000);
    const old = c.addJoiner(GROUP, KEY, 1, 0);
    old.start();
    c.advance(1000);
    assert.equal(old.state, "joined");
    keys = [NEXT, KEY]; // pushed to every proxy: the new key signs, the old one is still accepted
    const fresh = c.addJoiner(GROUP, NEXT, 2, 0);
    const notYetRotated = c.addJoiner(GROUP, KEY, 4, 0); // a target still on the old key joins in the window
    fresh.start();
    notYetRotated.start();
    c.advance(60_000); // several keepalive rounds of the old target
    assert.deepEqual([old.state, fresh.state, notYetRotated.state], ["joined", "joined", "joined"]);
    assert.equal(c.joinerEvents.filter((e) => e.ev.state !== "joined" && e.ev.state !== "joining").length, 0, "no target was refused or lost its JAP");
    assert.equal(c.nodes[0].jap.targetCount, 3);
    const rejected = c.nodes.reduce((n, node) => n + node.auth.rejections.total, 0);
    assert.equal(rejected, 0, "nothing rejected during the window");
    keys = NEXT; // the window closes
    const late = c.addJoiner(GROUP, KEY, 3, 0);
    late.start();
    c.advance(1000);
    assert.notEqual(late.state, "joined");
    assert.ok(c.nodes[0].auth.rejections.counts["bad-mac"] > 0);
  });

  test("cluster key in three steps (accept the next key, sign with it, drop the old), one proxy at a time: no proxy frame is rejected and no proxy leaves a view", () => {
    const c = cluster(5, { groups: [{ ta: GROUP, key: KEY }] });
    c.advance(3000);
    c.addJoiner(GROUP, KEY, 1, 2).start();
    c.advance(1000);
    for (const step of [[CLUSTER, NEXT], [NEXT, CLUSTER], [NEXT]] as Uint8Array[][]) {
      for (const node of c.nodes) {
        node.auth.setClusterKey(step);
        c.advance(700); // proxies apply a push at different moments
      }
      c.advance(3000);
    }
    assert.equal(c.nodes.reduce((n, node) => n + node.auth.rejections.total, 0), 0);
    for (const node of c.nodes) assert.equal(node.membership.live().length, 5);
    assert.equal(c.joiners[0].state, "joined");
    const r = c.nodes[4].resolve(GROUP);
    if (r.status !== "cached") c.advance(200);
    assert.deepEqual(c.nodes[4].iap.cached(GROUP)?.map((j) => j.proxy.id), ["ap-2"]);
    // and the old key no longer speaks for a proxy
    assert.equal(c.nodes[0].auth.open(signer(CLUSTER, KEY).seal(heartbeat)).ok, false);
  });

  test("signing with the new key before every proxy accepts it loses frames: why the first step exists", () => {
    const c = cluster(3, { groups: [] });
    c.advance(3000);
    c.nodes[0].auth.setClusterKey([NEXT, CLUSTER]);
    c.advance(2000);
    assert.ok(c.nodes[1].auth.rejections.counts["bad-mac"] > 0);
  });
});
