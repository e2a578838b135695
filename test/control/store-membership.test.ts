// Proxy membership and fleet configuration from a replicated store, on the
// in-memory store (MemoryStore: etcd's revisions, leases and watches on a
// simulated clock): StoreMembership fed by StoreSync.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { StoreMembership, type StalenessEvent } from "../../src/control/lease-membership.js";
import { MemoryStore } from "../../src/control/memstore.js";
import { StoreSync } from "../../src/control/store-sync.js";
import type { KeyValueStore } from "../../src/control/store.js";
import type { MembershipEvent } from "../../src/control/membership.js";
import { ControlNode } from "../../src/control/node.js";
import { MemoryNetwork } from "../../src/control/memnet.js";
import { CLUSTER, GROUP, KEY, ep, ip4, targetAt } from "./arbitraries.js";
import { T0 } from "./env.js";

const TTL_S = 3;
const PREFIX = "/pias";

/** Let the store's promises and watch deliveries run. */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

function fleet(n: number, wrap: (c: KeyValueStore, i: number) => KeyValueStore = (c) => c) {
  const clock = { t: T0 };
  const now = () => clock.t;
  const store = new MemoryStore(now);
  const ids = Array.from({ length: n }, (_, i) => `p${i + 1}`);
  const events: { at: string; ev: MembershipEvent }[] = [];
  const stale: { at: string; ev: StalenessEvent }[] = [];
  const configs: { at: string; entries: Map<string, string>; revision: number }[] = [];
  const members = ids.map((id, i) => {
    const membership = new StoreMembership({ self: { id, endpoint: ep(ip4(10, 255, 0, i + 1), 7470) }, now, staleAfterMs: TTL_S * 1000 });
    membership.onChange((ev) => events.push({ at: id, ev }));
    membership.onStaleness((ev) => stale.push({ at: id, ev }));
    const sync = new StoreSync({
      store: wrap(store.client(id), i), prefix: PREFIX, membership, leaseTtlS: TTL_S, now,
      onConfig: (entries, revision) => configs.push({ at: id, entries: new Map(entries), revision }),
    });
    return { id, membership, sync, alive: true };
  });
  const f = {
    clock, store, members, events, stale, configs,
    async start(): Promise<void> {
      for (const m of members) {
        await m.sync.start();
        await m.sync.join();
      }
      await f.advance(100);
    },
    /** Advance the clock in 100 ms steps, ticking every live member. */
    async advance(ms: number): Promise<void> {
      const end = clock.t + ms;
      while (clock.t < end) {
        clock.t = Math.min(end, clock.t + 100);
        store.expire();
        for (const m of members) if (m.alive) m.sync.tick();
        await settle();
      }
    },
    views: () => members.filter((m) => m.alive).map((m) => m.membership.ring().ids.join(",")),
  };
  return f;
}

describe("store membership (leases)", () => {
  test("every proxy's view is the set of live proxy keys, and a joining proxy enters every view at the revision of its put", async () => {
    const f = fleet(4);
    await f.start();
    assert.deepEqual(f.views(), Array(4).fill("p1,p2,p3,p4"));
    const ups = f.events.filter((e) => e.ev.kind === "up" && e.ev.proxy.id === "p4");
    assert.equal(ups.length, 3, "p1..p3 each saw p4 come");
    assert.equal(new Set(ups.map((e) => e.ev.revision)).size, 1, "at one revision");
    assert.equal(ups[0].ev.revision, f.store.revision);
    for (const m of f.members) assert.equal(m.membership.stale, false);
  });

  test("a proxy that dies (stops renewing) leaves every view within its lease TTL, at the one revision that deleted its key", async () => {
    const f = fleet(4);
    await f.start();
    await f.advance(5000);
    f.members[2].alive = false; // crash: no renewal, no revoke
    const died = f.clock.t;
    let gone = 0;
    while (f.views().some((v) => v.includes("p3"))) {
      await f.advance(100);
      assert.ok(f.clock.t - died <= TTL_S * 1000 + 200, "within the TTL (and one tick)");
    }
    gone = f.clock.t - died;
    assert.ok(gone > TTL_S * 1000 - 1000, `not before the lease could expire (${gone} ms)`);
    const downs = f.events.filter((e) => e.ev.kind === "down" && e.ev.proxy.id === "p3");
    assert.deepEqual(downs.map((e) => e.at).sort(), ["p1", "p2", "p4"]);
    assert.equal(new Set(downs.map((e) => e.ev.revision)).size, 1);
    assert.deepEqual(f.views(), Array(3).fill("p1,p2,p4"));
  });

  test("a proxy that restarts within its lease's TTL puts its key again with a new lease: every other view sees it leave and join, once, at that put's revision", async () => {
    const f = fleet(3);
    await f.start();
    const old = f.members[1];
    old.alive = false; // the old process is gone: no renewal, no revoke
    const before = f.events.length;
    const now = () => f.clock.t;
    const membership = new StoreMembership({ self: old.membership.self, now, staleAfterMs: TTL_S * 1000 });
    const sync = new StoreSync({ store: f.store.client("p2"), prefix: PREFIX, membership, leaseTtlS: TTL_S, now });
    await sync.start();
    await sync.join();
    const putAt = f.store.revision;
    f.members[1] = { ...old, membership, sync, alive: true };
    await f.advance(TTL_S * 1000 + 500); // the old lease expires meanwhile; the key is the new lease's now
    const seen = f.events.slice(before).filter((e) => e.at !== "p2" && e.ev.proxy.id === "p2");
    assert.deepEqual(seen.map((e) => `${e.at} ${e.ev.kind}`).sort(), ["p1 down", "p1 up", "p3 down", "p3 up"]);
    assert.deepEqual([...new Set(seen.map((e) => e.ev.revision))], [putAt]);
    assert.deepEqual(f.views(), Array(3).fill("p1,p2,p3"));
  });

  test("a proxy that stops cleanly (revokes its lease) leaves every view at once", async () => {
    const f = fleet(3);
    await f.start();
    f.members[0].alive = false;
    await f.members[0].sync.stop();
    await settle();
    assert.deepEqual(f.views(), ["p2,p3", "p2,p3"]);
  });

  test("cut off from the store: a proxy keeps its view and says it is stale after a TTL; the others drop it at one revision; healed, it rejoins and every view takes it back at one revision", async () => {
    const f = fleet(4);
    await f.start();
    const p2 = f.members[1];
    assert.deepEqual(f.stale.filter((s) => s.at === "p2").map((s) => s.ev.stale), [false], "fresh once first read");
    f.store.partition("p2", true);
    await f.advance(TTL_S * 1000 + 1100);
    assert.equal(p2.membership.stale, true);
    assert.deepEqual(f.stale.filter((s) => s.at === "p2").map((s) => s.ev.stale), [false, true]);
    assert.equal(p2.membership.ring().ids.join(","), "p1,p2,p3,p4", "its own view is kept, frozen");
    for (const m of [0, 2, 3]) assert.equal(f.members[m].membership.ring().ids.join(","), "p1,p3,p4");
    const downs = f.events.filter((e) => e.ev.kind === "down" && e.ev.proxy.id === "p2");
    assert.equal(new Set(downs.map((e) => e.ev.revision)).size, 1);
    assert.equal(p2.sync.reachable, false);

    f.store.partition("p2", false);
    await f.advance(2000);
    assert.deepEqual(f.views(), Array(4).fill("p1,p2,p3,p4"));
    assert.equal(p2.membership.stale, false);
    assert.equal(p2.sync.counters.leaseGrants, 2, "a new lease");
    const back = f.events.filter((e) => e.ev.kind === "up" && e.ev.proxy.id === "p2" && e.ev.revision! > downs[0].ev.revision!);
    assert.deepEqual(back.map((e) => e.at).sort(), ["p1", "p2", "p3", "p4"], "the others took it back, and p2 heard it rejoined (its JAP registers again)");
    assert.equal(new Set(back.map((e) => e.ev.revision)).size, 1);
  });

  test("keepalives unanswered for longer than the TTL while the store kept the lease (a leader election extends every lease): the proxy keeps its lease and stays in every view", async () => {
    const f = fleet(3);
    await f.start();
    const p2 = f.members[1];
    f.store.partition("p2", true);
    await f.advance(TTL_S * 1000 - 500);
    f.store.promote();
    await f.advance(1600);
    assert.equal(p2.membership.stale, true, "a TTL went by without an answer");
    f.store.partition("p2", false);
    await f.advance(1000);
    assert.equal(p2.sync.counters.leaseGrants, 1, "the first lease, kept");
    assert.equal(p2.sync.counters.leaseLost, 0);
    assert.deepEqual(f.views(), Array(3).fill("p1,p2,p3"));
    assert.equal(f.events.filter((e) => e.ev.kind === "down").length, 0, "no view ever dropped p2");
    assert.equal(p2.membership.stale, false);
  });

  test("a proxy that starts while the store does not answer joins, reads and watches once it answers", async () => {
    const f = fleet(3);
    const late = f.members[2];
    f.store.partition("p3", true);
    for (const m of f.members) {
      await m.sync.start().catch(() => undefined);
      await m.sync.join().catch(() => undefined);
    }
    await f.advance(1000);
    assert.equal(late.sync.reachable, false);
    assert.equal(late.membership.ring().ids.join(","), "p3");
    assert.deepEqual([0, 1].map((i) => f.members[i].membership.ring().ids.join(",")), ["p1,p2", "p1,p2"]);
    f.store.partition("p3", false);
    await f.advance(1500);
    assert.deepEqual(f.views(), Array(3).fill("p1,p2,p3"));
    assert.equal(late.membership.stale, false);
    assert.equal(late.sync.counters.leaseGrants, 1);
  });

  test("a watch that misses changes is caught by the digest read and restarted from the mirror's revision: the changes arrive with their own revisions", async () => {
    let hang = true;
    const f = fleet(3, (c, i) => (i === 0 ? { ...c, watch: (p, from, on, err) => c.watch(p, from, (ev) => (hang ? undefined : on(ev)), err) } : c));
    await f.start();
    hang = false; // the restarted watch works
    await f.advance(TTL_S * 1000);
    assert.equal(f.members[0].membership.ring().ids.join(","), "p1,p2,p3");
    assert.ok(f.members[0].sync.counters.mismatches >= 1);
    assert.ok(f.members[0].sync.counters.watchRestarts >= 1);
    const seen = f.events.filter((e) => e.at === "p1" && e.ev.kind === "up").map((e) => e.ev.revision);
    const others = f.events.filter((e) => e.at === "p3" && e.ev.kind === "up" && e.ev.proxy.id === "p2").map((e) => e.ev.revision);
    assert.ok(seen.includes(others[0]), "p2 came at the same revision for p1 as for p3");
  });

  test("a watch that never delivers: a second mismatch in a row replaces the mirror with a full read", async () => {
    const f = fleet(3, (c, i) => (i === 0 ? { ...c, watch: (p, from, _on, err) => c.watch(p, from, () => undefined, err) } : c));
    await f.start();
    await f.advance(TTL_S * 1000);
    assert.equal(f.members[0].membership.ring().ids.join(","), "p1,p2,p3");
    assert.ok(f.members[0].sync.counters.mismatches >= 2);
  });

  test("configuration keys reach every proxy, once per transaction, with its revision", async () => {
    const f = fleet(3);
    await f.start();
    const admin = f.store.client("admin");
    const rev = await admin.replace(`${PREFIX}/config/`, [[`${PREFIX}/config/groups/web`, "{}"], [`${PREFIX}/config/cluster/key`, '{"key":"aa"}']]);
    await f.advance(100);
    assert.deepEqual(f.configs.map((c) => [c.at, c.revision, [...c.entries.keys()].sort()]), ["p1", "p2", "p3"].map((p) => [p, rev, ["cluster/key", "groups/web"]]));
    await admin.replace(`${PREFIX}/config/`, [[`${PREFIX}/config/groups/db`, "{}"]]);
    await f.advance(100);
    for (const m of f.members) assert.deepEqual([...m.sync.config().keys()], ["groups/db"]);
  });
});

describe("ControlNodes on store membership", () => {
  test("the ring comes from the store: a RAP that dies is replaced at one revision everywhere and its groups still resolve; no heartbeat is sent", async () => {
    const net = new MemoryNetwork({ latencyMs: 5, start: T0 });
    const store = new MemoryStore(net.now);
    const endpoints = [1, 2, 3, 4].map((i) => ep(ip4(192, 0, 2, i), 7400));
    const nodes = endpoints.map((endpoint, i) => {
      const membership = new StoreMembership({ self: { id: `ap-${i}`, endpoint }, now: net.now, staleAfterMs: TTL_S * 1000 });
      const sync = new StoreSync({ store: store.client(`ap-${i}`), prefix: PREFIX, membership, leaseTtlS: TTL_S, now: net.now });
      const node = new ControlNode({ id: `ap-${i}`, endpoint, clusterKey: CLUSTER, groupKey: () => KEY, seeds: [], membership, now: net.now, send: net.sender(endpoint), random: () => 0.5 });
      net.attach(endpoint, (from, bytes) => node.receive(from, bytes));
      return { node, sync, alive: true };
    });
    for (const n of nodes) {
      await n.sync.start();
      await n.sync.join();
    }
    const run = async (ms: number) => {
      for (let t = 0; t < ms; t += 100) {
        net.run(net.now() + 100);
        store.expire();
        for (const n of nodes) if (n.alive) (n.sync.tick(), n.node.tick());
        await settle();
      }
    };
    await run(500);
    for (const n of nodes) assert.equal(n.node.membership.ring().size, 4);
    // a target joins at ap-3; the group's first RAP dies
    nodes[3].node.receive(ep(ip4(10, 0, 0, 9), 4000), nodes[3].node.auth.seal({ type: "join", ta: GROUP, target: targetAt(9) }));
    await run(500);
    const [rap] = nodes[0].node.membership.ring().raps(GROUP, 2);
    const victim = Number(rap.slice(3));
    assert.notEqual(victim, 3, "(the JAP is not the victim: the cluster helper's order makes this hold)");
    nodes[victim].alive = false;
    net.detach(endpoints[victim]);
    await run(TTL_S * 1000 + 500);
    const alive = nodes.filter((n) => n.alive);
    for (const n of alive) assert.equal(n.node.membership.ring().has(rap), false);
    const asker = alive.find((n) => n.node.self.id !== "ap-3")!.node;
    asker.resolve(GROUP);
    await run(300);
    assert.deepEqual(asker.iap.cached(GROUP)?.map((j) => j.proxy.id), ["ap-3"]);
    for (const n of nodes) assert.equal(n.node.stats().sent.heartbeat ?? 0, 0);
  });
});
