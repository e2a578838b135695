// Proxy membership: seeds, heartbeats, dead after missed intervals, rejoin.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { Membership, type MembershipEvent } from "../../src/control/membership.js";
import type { HeartbeatMessage, ProxyRef } from "../../src/control/message.js";
import { epKey } from "../../src/control/ta.js";
import { ep, ip4 } from "./arbitraries.js";
import { fakeEnv } from "./env.js";

const A: ProxyRef = { id: "ap-a", endpoint: ep(ip4(192, 0, 2, 1), 7400) };
const B: ProxyRef = { id: "ap-b", endpoint: ep(ip4(192, 0, 2, 2), 7400) };
const C: ProxyRef = { id: "ap-c", endpoint: ep(ip4(192, 0, 2, 3), 7400) };
const hb = (from: ProxyRef, incarnation = 1, known: ProxyRef[] = []): HeartbeatMessage => ({
  type: "heartbeat",
  from,
  incarnation,
  known: known.map((proxy) => ({ proxy, incarnation: 1 })),
});

function setup() {
  const env = fakeEnv();
  const events: MembershipEvent[] = [];
  const m = new Membership({ self: A, incarnation: 7, seeds: [B.endpoint, A.endpoint], intervalMs: 1000, deadAfter: 3, now: env.now, send: env.send });
  m.onChange((e) => events.push(e));
  return { env, m, events };
}

describe("proxy membership", () => {
  test("heartbeats go to every seed (never to itself) every interval, carrying the incarnation", () => {
    const { env, m } = setup();
    m.tick();
    const first = env.take("heartbeat");
    assert.deepEqual(first.map((s) => epKey(s.to)), ["192.0.2.2:7400"]);
    assert.equal(first[0].msg.incarnation, 7);
    env.t += 500;
    m.tick();
    assert.equal(env.take().length, 0, "not before the interval");
    env.t += 500;
    m.tick();
    assert.equal(env.take("heartbeat").length, 1);
  });

  test("a proxy heard from is live and on the ring; the ring always includes self", () => {
    const { m, events } = setup();
    assert.deepEqual(m.ring().ids, ["ap-a"]);
    m.onHeartbeat(hb(B));
    assert.deepEqual(m.ring().ids, ["ap-a", "ap-b"]);
    assert.deepEqual(events.map((e) => `${e.kind} ${e.proxy.id}`), ["up ap-b"]);
    assert.equal(m.isLive("ap-b"), true);
  });

  test("a proxy that misses 3 heartbeat intervals is declared dead, not before, and rejoins when heard again", () => {
    const { env, m, events } = setup();
    m.onHeartbeat(hb(B));
    env.t += 3000;
    m.tick();
    assert.equal(m.isLive("ap-b"), true, "exactly 3 intervals: still live");
    env.t += 1;
    m.tick();
    assert.equal(m.isLive("ap-b"), false);
    assert.deepEqual(m.ring().ids, ["ap-a"]);
    env.t += 10_000;
    m.onHeartbeat(hb(B));
    assert.equal(m.isLive("ap-b"), true);
    assert.deepEqual(events.map((e) => `${e.kind} ${e.proxy.id}`), ["up ap-b", "down ap-b", "up ap-b"]);
  });

  test("a live proxy heard with a higher incarnation restarted: it goes down and comes up again, in that order", () => {
    const { m, events } = setup();
    m.onHeartbeat(hb(B, 5));
    m.onHeartbeat(hb(B, 5));
    m.onHeartbeat(hb(B, 6));
    assert.equal(m.isLive("ap-b"), true);
    assert.deepEqual(events.map((e) => `${e.kind} ${e.proxy.id}`), ["up ap-b", "down ap-b", "up ap-b"]);
  });

  test("proxies learned from gossip are heartbeated but not live until heard directly", () => {
    const { env, m } = setup();
    m.onHeartbeat(hb(B, 1, [C]));
    assert.equal(m.isLive("ap-c"), false);
    m.tick();
    assert.deepEqual(env.take("heartbeat").map((s) => epKey(s.to)).sort(), ["192.0.2.2:7400", "192.0.2.3:7400"]);
    m.onHeartbeat(hb(C));
    assert.equal(m.isLive("ap-c"), true);
  });

  test("a heartbeat with an older incarnation than known is ignored", () => {
    const { env, m } = setup();
    m.onHeartbeat(hb(B, 5));
    env.t += 3500;
    m.onHeartbeat(hb(B, 4));
    m.tick();
    assert.equal(m.isLive("ap-b"), false, "the stale heartbeat did not renew it");
    assert.equal(m.stale, 1);
  });

  test("heartbeats list the live proxies, so a new proxy learns the others from one seed", () => {
    const { env, m } = setup();
    m.onHeartbeat(hb(B));
    m.onHeartbeat(hb(C));
    env.t += 1000;
    m.tick();
    const [s] = env.take("heartbeat");
    assert.deepEqual(s.msg.known.map((k) => k.proxy.id).sort(), ["ap-b", "ap-c"]);
  });
});
