// The IAP role: a cache of group -> JAPs, lookups with fallback, and packets held until the answer.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { Iap, type IapOptions, type Release } from "../../src/control/iap.js";
import { NegativeCache } from "../../src/control/negative.js";
import type { JapEntry, ProxyRef } from "../../src/control/message.js";
import { GROUP } from "./arbitraries.js";
import { fakeEnv, proxies } from "./env.js";

function setup(opts: Partial<Pick<IapOptions, "maxPendingPerGroup" | "maxCacheEntries" | "lookupsPerSecond" | "lookupBurst" | "negativeSlots" | "maxPendingBytes" | "maxPendingGroups">> = {}) {
  const env = fakeEnv();
  const ps = proxies(6);
  const released: Release[] = [];
  const iap = new Iap({
    self: ps.all[0],
    now: env.now,
    send: env.send,
    ring: ps.ring,
    proxy: ps.proxy,
    lookupTimeoutMs: 500,
    onRelease: (r) => released.push(r),
    ...opts,
  });
  const raps = ps.ring().raps(GROUP, 2);
  const entry = (p: ProxyRef, load = 1): JapEntry => ({ proxy: p, load });
  const reply = (japs: JapEntry[], ttl = 60, from = raps[0]) =>
    iap.handleLookupReply({ type: "lookup-reply", rap: ps.proxy(from)!, requestId: 1, ta: GROUP, ttl, japs });
  return { env, ps, iap, released, raps, entry, reply };
}

const pkt = (i: number): Uint8Array => Uint8Array.of(i);

describe("IAP", () => {
  test("a miss sends LOOKUP to the group's first RAP and reports pending; the answer releases the queued packets in order", () => {
    const { env, ps, iap, released, raps, entry, reply } = setup();
    assert.deepEqual(iap.resolve(GROUP, pkt(1)), { status: "pending", queued: true });
    assert.deepEqual(iap.resolve(GROUP, pkt(2)), { status: "pending", queued: true });
    const lookups = env.take("lookup");
    assert.equal(lookups.length, 1, "one lookup per group, however many packets wait");
    assert.equal(ps.byEndpoint(lookups[0].to)?.id, raps[0]);
    reply([entry(ps.all[3], 4)]);
    assert.equal(released.length, 1);
    assert.deepEqual(released[0].packets.map((p) => p[0]), [1, 2]);
    assert.deepEqual(released[0].japs.map((j) => j.proxy.id), ["ap-3"]);
    assert.equal(released[0].failed, false);
    assert.deepEqual(iap.resolve(GROUP, pkt(3)), { status: "cached", japs: [entry(ps.all[3], 4)] });
  });

  test("the pending queue is bounded per group and drops past the bound are counted", () => {
    const { iap, released, ps, entry, reply } = setup({ maxPendingPerGroup: 3 });
    const results = [1, 2, 3, 4, 5].map((i) => iap.resolve(GROUP, pkt(i)));
    assert.deepEqual(results.map((r) => r.status === "pending" && r.queued), [true, true, true, false, false]);
    assert.equal(iap.counters.pendingDrops, 2);
    assert.equal(iap.pendingPackets(GROUP), 3);
    reply([entry(ps.all[3])]);
    assert.deepEqual(released[0].packets.map((p) => p[0]), [1, 2, 3]);
  });

  test("an unanswered LOOKUP falls back to the replica after the timeout", () => {
    const { env, ps, iap, released, raps, entry, reply } = setup();
    iap.resolve(GROUP, pkt(1));
    env.take();
    env.t += 499;
    iap.tick();
    assert.equal(env.take("lookup").length, 0, "not before the timeout");
    env.t += 1;
    iap.tick();
    const [second] = env.take("lookup");
    assert.equal(ps.byEndpoint(second.to)?.id, raps[1]);
    assert.equal(iap.counters.fallbacks, 1);
    reply([entry(ps.all[5])], 60, raps[1]);
    assert.deepEqual(released[0].japs.map((j) => j.proxy.id), ["ap-5"]);
  });

  test("when every RAP times out the queued packets are released as failed", () => {
    const { env, iap, released } = setup();
    iap.resolve(GROUP, pkt(1));
    env.t += 500;
    iap.tick();
    env.t += 500;
    iap.tick();
    assert.equal(released.length, 1);
    assert.equal(released[0].failed, true);
    assert.deepEqual(released[0].japs, []);
    assert.equal(iap.counters.failed, 1);
  });

  test("a cached answer expires after its TTL and the next resolve asks again", () => {
    const { env, iap, ps, entry, reply } = setup();
    iap.resolve(GROUP);
    reply([entry(ps.all[3])], 60);
    env.take();
    env.t += 59_999;
    iap.tick();
    assert.equal(iap.resolve(GROUP).status, "cached");
    env.t += 1;
    iap.tick();
    assert.equal(iap.cacheSize, 0);
    assert.equal(iap.resolve(GROUP).status, "pending");
    assert.equal(env.take("lookup").length, 1);
  });

  test("a PUSH replaces the cached JAPs and renews the TTL", () => {
    const { env, iap, ps, entry, reply, raps } = setup();
    iap.resolve(GROUP);
    reply([entry(ps.all[3])], 60);
    env.t += 50_000;
    iap.handlePush({ type: "push", rap: ps.proxy(raps[0])!, ta: GROUP, ttl: 60, japs: [entry(ps.all[3]), entry(ps.all[4])] });
    env.t += 50_000;
    iap.tick();
    const r = iap.resolve(GROUP);
    assert.equal(r.status, "cached");
    assert.deepEqual(r.status === "cached" && r.japs.map((j) => j.proxy.id), ["ap-3", "ap-4"]);
  });

  test("a PUSH about a group nobody asked for is ignored (no unbounded state from pushes)", () => {
    const { iap, ps, entry, raps } = setup();
    iap.handlePush({ type: "push", rap: ps.proxy(raps[0])!, ta: GROUP, ttl: 60, japs: [entry(ps.all[3])] });
    assert.equal(iap.cacheSize, 0);
  });

  test("a JAP that membership declared dead is never handed out", () => {
    const { iap, ps, entry, reply } = setup();
    iap.resolve(GROUP);
    reply([entry(ps.all[3]), entry(ps.all[4])]);
    ps.kill("ap-3");
    const r = iap.resolve(GROUP);
    assert.deepEqual(r.status === "cached" && r.japs.map((j) => j.proxy.id), ["ap-4"]);
  });

  test("negative answers for a flood of random TAs take fixed memory: the cache does not grow, and the next packet to one of them is answered without a lookup", () => {
    const { env, iap, ps, raps } = setup({ lookupsPerSecond: 1e9, lookupBurst: 1e9, negativeSlots: 1024 });
    const group = (i: number) => ({ ...GROUP, port: 1 + (i % 65535), address: Uint8Array.of(203, 0, 113, i >> 16) });
    for (let i = 0; i < 100_000; i++) {
      iap.resolve(group(i), () => pkt(i));
      iap.handleLookupReply({ type: "lookup-reply", rap: ps.proxy(raps[0])!, requestId: 1, ta: group(i), ttl: 60, japs: [] });
    }
    assert.equal(iap.cacheSize, 0, "no map entry per TA");
    assert.equal(iap.pendingGroups, 0);
    assert.equal(iap.queuedBytes, 0);
    assert.equal(iap.negative.bytes, 1024 * 12, "fixed at construction");
    env.take();
    assert.deepEqual(iap.resolve(group(99_999)), { status: "cached", japs: [] });
    assert.equal(env.take("lookup").length, 0);
    env.t += 30_000;
    assert.equal(iap.resolve(group(99_999)).status, "pending", "a negative answer is kept negativeTtlS (30 s) at most");
  });

  test("new lookups are rate-limited as a whole: past the budget the packet is dropped and counted, and no lookup is sent", () => {
    const { env, iap } = setup({ lookupsPerSecond: 10, lookupBurst: 5 });
    const results = Array.from({ length: 8 }, (_, i) => iap.resolve({ ...GROUP, port: 1000 + i }, pkt(i)));
    assert.deepEqual(results.map((r) => r.status === "pending" && r.queued), [true, true, true, true, true, false, false, false]);
    assert.equal(env.take("lookup").length, 5);
    assert.equal(iap.counters.lookupsThrottled, 3);
    assert.equal(iap.pendingGroups, 5);
    assert.deepEqual(iap.resolve({ ...GROUP, port: 1000 }, pkt(9)), { status: "pending", queued: true }, "a TA already asked about needs no new lookup");
    env.t += 100;
    assert.equal(iap.resolve({ ...GROUP, port: 2000 }, pkt(10)).status === "pending", true);
    assert.equal(env.take("lookup").length, 1, "one token back after 100 ms at 10/s");
  });

  test("queued packets are bounded in bytes over all groups", () => {
    const { iap } = setup({ maxPendingBytes: 3000 });
    const big = new Uint8Array(1000);
    const queued = Array.from({ length: 5 }, (_, i) => iap.resolve({ ...GROUP, port: 1000 + i }, big));
    assert.deepEqual(queued.map((r) => r.status === "pending" && r.queued), [true, true, true, false, false]);
    assert.equal(iap.queuedBytes, 3000);
  });

  test("a PUSH naming JAPs for a TA cached as negative replaces the negative answer", () => {
    const { env, iap, ps, entry, reply, raps } = setup();
    iap.resolve(GROUP);
    reply([]);
    assert.deepEqual(iap.cached(GROUP), []);
    assert.equal(iap.cacheSize, 0);
    iap.handlePush({ type: "push", rap: ps.proxy(raps[0])!, ta: GROUP, ttl: 60, japs: [entry(ps.all[3])] });
    assert.deepEqual(iap.cached(GROUP)?.map((j) => j.proxy.id), ["ap-3"]);
    assert.equal(iap.counters.negativeCleared, 1);
    env.take();
  });

  test("the cache is bounded: past its size the oldest answer is evicted", () => {
    const { iap, ps, entry, raps } = setup({ maxCacheEntries: 3 });
    const group = (i: number) => ({ ...GROUP, port: 1000 + i });
    for (let i = 0; i < 10; i++) {
      iap.resolve(group(i));
      iap.handleLookupReply({ type: "lookup-reply", rap: ps.proxy(raps[0])!, requestId: 1, ta: group(i), ttl: 60, japs: [entry(ps.all[3])] });
      assert.ok(iap.cacheSize <= 3);
    }
    assert.equal(iap.counters.evicted, 7);
    assert.deepEqual([7, 8, 9].map((i) => iap.cached(group(i)) !== undefined), [true, true, true]);
    assert.equal(iap.cached(group(6)), undefined);
  });
});

describe("negative cache", () => {
  test("remembers a TA until its deadline, forgets it on delete, and never holds more than its slots", () => {
    const n = new NegativeCache(100);
    assert.equal(n.slots, 128);
    n.set("a", 1000);
    assert.equal(n.has("a", 999), true);
    assert.equal(n.has("a", 1000), false);
    assert.equal(n.has("b", 0), false);
    assert.equal(n.delete("a"), true);
    assert.equal(n.has("a", 0), false);
    for (let i = 0; i < 10_000; i++) n.set(`k${i}`, 1000);
    assert.ok(n.size <= 128);
    assert.equal(n.bytes, 128 * 12);
  });
});
