// Five proxies and a handful of targets on an in-memory network with simulated
// time: the whole control plane end to end, including failures.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { GROUP, GROUP_B, KEY, KEY_B } from "./arbitraries.js";
import { cluster } from "./cluster.js";
import type { TransportAddress } from "../../src/control/ta.js";

const ids = (japs: readonly { proxy: { id: string } }[]): string[] => japs.map((j) => j.proxy.id).sort();

function fiveProxies() {
  const c = cluster(5, { groups: [{ ta: GROUP, key: KEY }, { ta: GROUP_B, key: KEY_B }] });
  c.advance(3000); // membership converges
  return c;
}

/** Resolve at node i, letting the network answer; returns the JAP ids. */
function resolveAt(c: ReturnType<typeof cluster>, i: number, ta: TransportAddress, waitMs = 200): string[] | undefined {
  const first = c.nodes[i].resolve(ta, Uint8Array.of(1));
  if (first.status === "cached") return ids(first.japs);
  c.advance(waitMs, 10);
  const r = c.nodes[i].iap.cached(ta);
  return r && ids(r);
}

describe("five proxies, end to end", () => {
  test("membership converges: every proxy sees all five on the ring", () => {
    const c = fiveProxies();
    for (const n of c.nodes) assert.deepEqual(n.membership.ring().ids, ["ap-0", "ap-1", "ap-2", "ap-3", "ap-4"]);
  });

  test("targets join at their nearest proxies, and an IAP resolves the group to exactly those JAPs", () => {
    const c = fiveProxies();
    c.addJoiner(GROUP, KEY, 1, 1);
    c.addJoiner(GROUP, KEY, 2, 1);
    c.addJoiner(GROUP, KEY, 3, 2);
    c.addJoiner(GROUP_B, KEY_B, 4, 3);
    for (const j of c.joiners) j.start();
    c.advance(1000);
    assert.deepEqual(c.joiners.map((j) => [j.state, j.jap?.id]), [["joined", "ap-1"], ["joined", "ap-1"], ["joined", "ap-2"], ["joined", "ap-3"]]);
    // The group's RAPs (and only they) know its JAPs, not its targets.
    const raps = c.nodes[0].membership.ring().raps(GROUP, 2);
    for (const n of c.nodes) {
      const japs = ids(n.rap.japsOf(GROUP));
      assert.deepEqual(japs, raps.includes(n.self.id) ? ["ap-1", "ap-2"] : []);
    }
    for (let i = 0; i < 5; i++) assert.deepEqual(resolveAt(c, i, GROUP), ["ap-1", "ap-2"], `IAP ap-${i}`);
    assert.deepEqual(resolveAt(c, 0, GROUP_B), ["ap-3"]);
    const rel = c.released.find((r) => r.node === 4 && r.release.packets.length > 0);
    assert.ok(rel, "the packet that missed was released with the answer");
    assert.deepEqual(ids(rel!.release.japs), ["ap-1", "ap-2"]);
  });

  test("a JAP dies: the RAPs forget it, IAPs that asked are pushed the change, its targets re-join at the next nearest proxy", () => {
    const c = fiveProxies();
    const raps = c.nodes[0].membership.ring().raps(GROUP, 2).map((id) => c.index(id));
    // Put the targets on JAPs that are not RAPs of the group, and kill one of them.
    const japs = [0, 1, 2, 3, 4].filter((i) => !raps.includes(i));
    const [victim, other] = japs;
    c.addJoiner(GROUP, KEY, 1, victim);
    c.addJoiner(GROUP, KEY, 2, victim);
    c.addJoiner(GROUP, KEY, 3, other);
    for (const j of c.joiners) j.start();
    c.advance(1000);
    const iap = japs[2];
    assert.deepEqual(resolveAt(c, iap, GROUP), [`ap-${victim}`, `ap-${other}`].sort());
    c.kill(victim);
    c.advance(4000); // declared dead after 3 missed heartbeats
    for (const r of raps) assert.deepEqual(ids(c.nodes[r].rap.japsOf(GROUP)), [`ap-${other}`], `RAP ap-${r} forgot the dead JAP`);
    assert.deepEqual(ids(c.nodes[iap].iap.cached(GROUP) ?? []), [`ap-${other}`], "the IAP was pushed the change");
    c.advance(10_000); // one keepalive interval: the victim's targets reach the next proxy by anycast
    const moved = (victim + 1) % 5;
    assert.deepEqual(c.joiners.map((j) => j.jap?.id), [`ap-${moved}`, `ap-${moved}`, `ap-${other}`]);
    assert.ok(c.joinerEvents.some((e) => e.ev.moved === true));
    const expected = [...new Set([`ap-${moved}`, `ap-${other}`])].sort();
    assert.deepEqual(ids(c.nodes[iap].iap.cached(GROUP) ?? []), expected, "pushed again when the targets re-joined");
    for (const r of raps) assert.deepEqual(ids(c.nodes[r].rap.japsOf(GROUP)), expected);
  });

  test("a JAP whose refreshes stop reaching the RAPs is forgotten after the registration expiry, and is back with its next refresh", () => {
    const c = fiveProxies();
    const raps = c.nodes[0].membership.ring().raps(GROUP, 2).map((id) => c.index(id));
    const jap = [0, 1, 2, 3, 4].find((i) => !raps.includes(i))!;
    c.addJoiner(GROUP, KEY, 1, jap);
    c.joiners[0].start();
    c.advance(1000);
    assert.deepEqual(ids(c.nodes[raps[0]].rap.japsOf(GROUP)), [`ap-${jap}`]);
    const japEp = c.endpoints[jap];
    c.net.drop = (from, _to, bytes) => from === japEp && bytes[3] === 18; // REFRESH frames of that JAP
    c.advance(89_000);
    assert.deepEqual(ids(c.nodes[raps[0]].rap.japsOf(GROUP)), [`ap-${jap}`], "kept until the expiry (90 s)");
    c.advance(2000);
    for (const r of raps) assert.deepEqual(ids(c.nodes[r].rap.japsOf(GROUP)), [], "forgotten without refreshes");
    c.net.drop = undefined;
    c.advance(30_000);
    for (const r of raps) assert.deepEqual(ids(c.nodes[r].rap.japsOf(GROUP)), [`ap-${jap}`], "a refresh re-registers");
  });

  test("a RAP dies: a lookup sent to it times out and the replica answers; after the ring changes the new RAP set knows every JAP", () => {
    const c = fiveProxies();
    const [primary, replica] = c.nodes[0].membership.ring().raps(GROUP, 2).map((id) => c.index(id));
    const others = [0, 1, 2, 3, 4].filter((i) => i !== primary && i !== replica);
    c.addJoiner(GROUP, KEY, 1, others[0]);
    c.addJoiner(GROUP, KEY, 2, others[1]);
    for (const j of c.joiners) j.start();
    c.advance(1000);
    const want = [`ap-${others[0]}`, `ap-${others[1]}`].sort();
    c.kill(primary);
    // Before membership notices, the IAP still asks the dead primary first.
    const iap = others[2];
    assert.equal(c.nodes[iap].resolve(GROUP, Uint8Array.of(9)).status, "pending");
    c.advance(400, 10);
    assert.equal(c.nodes[iap].iap.cached(GROUP), undefined, "no answer from the dead primary");
    c.advance(300, 10);
    assert.equal(c.nodes[iap].iap.counters.fallbacks, 1);
    assert.deepEqual(ids(c.nodes[iap].iap.cached(GROUP) ?? []), want, "the replica answered");
    const rel = c.released.find((r) => r.node === iap);
    assert.deepEqual(rel && [rel.release.failed, rel.release.packets.length], [false, 1]);
    // Once the primary is declared dead, the JAPs register with the group's new second RAP.
    c.advance(4000);
    const ring = c.nodes[iap].membership.ring();
    assert.ok(!ring.has(`ap-${primary}`));
    const now = ring.raps(GROUP, 2).map((id) => c.index(id));
    assert.equal(now[0], replica, "the replica is the new primary");
    for (const r of now) assert.deepEqual(ids(c.nodes[r].rap.japsOf(GROUP)), want, `RAP ap-${r}`);
    // A fresh IAP resolves through the new RAP set.
    assert.deepEqual(resolveAt(c, others[1], GROUP), want);
  });

  test("a RAP that restarts before anyone declares it dead (a higher incarnation) is sent every registration within a heartbeat, not at the next refresh, and answers lookups", () => {
    const c = fiveProxies();
    const [primary] = c.nodes[0].membership.ring().raps(GROUP, 2).map((id) => c.index(id));
    const jap = [0, 1, 2, 3, 4].find((i) => !c.nodes[0].membership.ring().raps(GROUP, 2).includes(`ap-${i}`))!;
    c.addJoiner(GROUP, KEY, 1, jap);
    c.joiners[0].start();
    c.advance(1000);
    assert.deepEqual(ids(c.nodes[primary].rap.japsOf(GROUP)), [`ap-${jap}`]);
    c.restart(primary);
    assert.deepEqual(ids(c.nodes[primary].rap.japsOf(GROUP)), [], "the new process knows nothing");
    c.advance(2000);
    assert.deepEqual(ids(c.nodes[primary].rap.japsOf(GROUP)), [`ap-${jap}`], "registered again (the refresh round is 30 s)");
    const iap = [0, 1, 2, 3, 4].find((i) => i !== primary && i !== jap)!;
    assert.deepEqual(resolveAt(c, iap, GROUP), [`ap-${jap}`]);
  });

  test("a target that leaves is gone from its JAP at once, and a JAP left without targets unregisters", () => {
    const c = fiveProxies();
    c.addJoiner(GROUP, KEY, 1, 1);
    c.addJoiner(GROUP, KEY, 2, 2);
    for (const j of c.joiners) j.start();
    c.advance(1000);
    c.joiners[0].stop();
    c.advance(10, 10);
    assert.equal(c.nodes[1].jap.targetCount, 0, "gone as soon as the LEAVE arrives");
    c.advance(200); // the UNREGISTER leaves with the JAP's next tick
    const raps = c.nodes[0].membership.ring().raps(GROUP, 2).map((id) => c.index(id));
    for (const r of raps) assert.deepEqual(ids(c.nodes[r].rap.japsOf(GROUP)), ["ap-2"]);
    assert.ok(c.targetEvents.some((e) => e.node === 1 && e.ev.kind === "remove" && e.ev.reason === "leave"));
  });
});
