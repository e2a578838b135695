// The RAP role: which JAPs serve a group, answered to IAPs and pushed to them on change.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { Rap } from "../../src/control/rap.js";
import type { ProxyRef } from "../../src/control/message.js";
import { epKey } from "../../src/control/ta.js";
import { GROUP, GROUP_B } from "./arbitraries.js";
import { fakeEnv, proxies } from "./env.js";

function setup() {
  const env = fakeEnv();
  const ps = proxies(8);
  const rap = new Rap({ self: ps.all[0], now: env.now, send: env.send, expiryMs: 90_000, ttlS: 60 });
  // As the node does, flush after each handled frame.
  const register = (jap: ProxyRef, load = 1, ta = GROUP) => {
    rap.handleRegister({ type: "register", jap, entries: [{ ta, load }] });
    rap.flush();
  };
  const refresh = (jap: ProxyRef, load = 1, ta = GROUP) => {
    rap.handleRegister({ type: "refresh", jap, entries: [{ ta, load }] });
    rap.flush();
  };
  const lookup = (iap: ProxyRef, ta = GROUP, requestId = 1) => rap.handleLookup({ type: "lookup", iap, requestId, ta });
  return { env, ps, rap, register, refresh, lookup };
}

describe("RAP", () => {
  test("a lookup is answered with the registered JAPs, their loads, the request id and the TTL", () => {
    const { env, ps, register, lookup } = setup();
    register(ps.all[1], 5);
    register(ps.all[2], 7);
    register(ps.all[3], 1, GROUP_B);
    lookup(ps.all[4], GROUP, 42);
    const [r] = env.take("lookup-reply");
    assert.equal(epKey(r.to), epKey(ps.all[4].endpoint));
    assert.equal(r.msg.requestId, 42);
    assert.equal(r.msg.ttl, 60);
    assert.deepEqual(r.msg.japs.map((j) => [j.proxy.id, j.load]), [["ap-1", 5], ["ap-2", 7]]);
  });

  test("a lookup of a group with no JAP is answered with an empty list", () => {
    const { env, ps, lookup } = setup();
    lookup(ps.all[4]);
    assert.deepEqual(env.take("lookup-reply")[0].msg.japs, []);
  });

  test("a lookup flood for groups nobody registered creates no state per TA: the IAP is remembered once, and hears of a group when it appears", () => {
    const { env, ps, rap, register, lookup } = setup();
    for (let port = 1; port <= 5000; port++) lookup(ps.all[4], { ...GROUP, port });
    for (let port = 1; port <= 5000; port++) lookup(ps.all[5], { ...GROUP, port });
    assert.equal(rap.groupCount, 0, "no group per TA asked about");
    assert.equal(rap.negativeWatcherCount, 2, "one entry per asking proxy");
    assert.equal(rap.counters.negativeLookups, 10_000);
    env.take();
    register(ps.all[1], 1, { ...GROUP, port: 77 });
    const pushes = env.take("push");
    assert.deepEqual(pushes.map((p) => epKey(p.to)).sort(), [ps.all[4], ps.all[5]].map((p) => epKey(p.endpoint)).sort());
    assert.deepEqual(pushes[0].msg.japs.map((j) => j.proxy.id), ["ap-1"]);
    register(ps.all[2], 1, { ...GROUP, port: 77 });
    assert.equal(env.take("push").length, 2, "and they watch the group from then on, like IAPs that asked about it");
    register(ps.all[3], 1, { ...GROUP, port: 78 });
    assert.equal(env.take("push").length, 2, "another group's appearance goes to them too");
    env.t += 60_000;
    rap.tick();
    assert.equal(rap.negativeWatcherCount, 0, "negative watchers expire with the TTL");
  });

  test("IAPs that asked get a PUSH when the set of JAPs changes (register, unregister), one per flush", () => {
    const { env, ps, rap, register, lookup } = setup();
    register(ps.all[1]);
    lookup(ps.all[4]);
    lookup(ps.all[5]);
    env.take();
    rap.handleRegister({ type: "register", jap: ps.all[2], entries: [{ ta: GROUP, load: 1 }] });
    rap.handleRegister({ type: "register", jap: ps.all[3], entries: [{ ta: GROUP, load: 1 }] });
    rap.flush();
    const pushes = env.take("push");
    assert.deepEqual(pushes.map((p) => epKey(p.to)).sort(), [ps.all[4], ps.all[5]].map((p) => epKey(p.endpoint)).sort());
    for (const p of pushes) assert.deepEqual(p.msg.japs.map((j) => j.proxy.id), ["ap-1", "ap-2", "ap-3"]);
    rap.handleUnregister({ type: "unregister", jap: ps.all[1], tas: [GROUP] });
    rap.flush();
    assert.deepEqual(env.take("push").map((p) => p.msg.japs.map((j) => j.proxy.id)), [["ap-2", "ap-3"], ["ap-2", "ap-3"]]);
  });

  test("a refresh or a load change alone pushes nothing", () => {
    const { env, ps, rap, register, refresh, lookup } = setup();
    register(ps.all[1]);
    lookup(ps.all[4]);
    env.take();
    refresh(ps.all[1], 99);
    rap.flush();
    assert.equal(env.take("push").length, 0);
    assert.equal(rap.japsOf(GROUP)[0].load, 99);
  });

  test("a registration that is not refreshed expires after the expiry time, and watching IAPs are told", () => {
    const { env, ps, rap, register, refresh, lookup } = setup();
    register(ps.all[1]);
    register(ps.all[2]);
    lookup(ps.all[4]);
    env.take();
    for (let i = 0; i < 4; i++) {
      env.t += 30_000;
      refresh(ps.all[2]);
      rap.tick();
      rap.flush();
      lookup(ps.all[4]); // the IAP keeps asking as its TTL runs out
    }
    assert.deepEqual(rap.japsOf(GROUP).map((j) => j.proxy.id), ["ap-2"]);
    const pushes = env.take("push");
    assert.equal(pushes.length, 1);
    assert.deepEqual(pushes[0].msg.japs.map((j) => j.proxy.id), ["ap-2"]);
    assert.equal(rap.counters.expired, 1);
  });

  test("a group with neither JAPs nor watchers is forgotten", () => {
    const { env, ps, rap, register, lookup } = setup();
    register(ps.all[1]);
    lookup(ps.all[4]);
    rap.handleUnregister({ type: "unregister", jap: ps.all[1], tas: [GROUP] });
    env.t += 61_000;
    rap.tick();
    assert.equal(rap.groupCount, 0);
  });

  test("state per group is bounded by the number of proxies, whatever the churn behind them", () => {
    const { ps, rap, register, refresh, lookup } = setup();
    for (let i = 0; i < 10_000; i++) {
      const p = ps.all[i % ps.all.length];
      if (i % 3 === 0) register(p, i);
      else if (i % 3 === 1) refresh(p, i);
      else lookup(p, GROUP, i);
    }
    assert.deepEqual(rap.maxPerGroup(), { japs: 8, watchers: 8 });
    assert.equal(rap.entryCount, 8);
  });

  test("when membership declares a JAP dead its registrations go at once, and watchers are told", () => {
    const { env, ps, rap, register, lookup } = setup();
    register(ps.all[1]);
    register(ps.all[2]);
    lookup(ps.all[4]);
    env.take();
    rap.proxyDown("ap-1");
    rap.flush();
    assert.deepEqual(rap.japsOf(GROUP).map((j) => j.proxy.id), ["ap-2"]);
    assert.deepEqual(env.take("push").map((p) => p.msg.japs.map((j) => j.proxy.id)), [["ap-2"]]);
  });
});
