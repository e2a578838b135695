// The JAP role: targets join, keep alive and leave; the group's RAPs hear only 0 <-> 1 transitions and refreshes.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { Jap, type TargetEvent } from "../../src/control/jap.js";
import { ControlNode } from "../../src/control/node.js";
import { Authenticator } from "../../src/control/auth.js";
import type { JoinMessage, KeepaliveMessage, LeaveMessage } from "../../src/control/message.js";
import { epKey, sameTa, type Endpoint } from "../../src/control/ta.js";
import { ep, GROUP, GROUP_B, ip4, KEY, KEY_B, CLUSTER, targetAt } from "./arbitraries.js";
import { fakeEnv, proxies, T0 } from "./env.js";

const FROM: Endpoint = ep(ip4(10, 0, 0, 5), 40000);
const join = (last: number, ta = GROUP): JoinMessage => ({ type: "join", ta, target: targetAt(last) });
const keepalive = (last: number, ta = GROUP): KeepaliveMessage => ({ type: "keepalive", ta, target: targetAt(last) });
const leave = (last: number, ta = GROUP): LeaveMessage => ({ type: "leave", ta, endpoint: targetAt(last).endpoint });

function setup(opts: { load?: (ta: unknown, n: number) => number; joinsPerSecond?: number; joinBurst?: number; deferInstall?: boolean } = {}) {
  const env = fakeEnv();
  const ps = proxies(5);
  const events: TargetEvent[] = [];
  const jap = new Jap({ self: ps.all[0], now: env.now, send: env.send, ring: ps.ring, proxy: ps.proxy, keepaliveIntervalS: 10, refreshIntervalMs: 30_000, ...opts });
  jap.onTarget((e) => events.push(e));
  const log = () => events.map((e) => `${e.kind} ${epKey(e.target.endpoint)}${e.reason ? ` ${e.reason}` : ""}`);
  return { env, ps, jap, events, log };
}

describe("JAP", () => {
  test("a join adds the target, tells the listener, and is answered with this JAP's address and the keepalive interval", () => {
    const { env, ps, jap, log } = setup();
    jap.handleJoin(join(5), FROM);
    assert.deepEqual(log(), ["add 10.0.0.5:8080"]);
    const [ack] = env.take("join-ack");
    assert.equal(epKey(ack.to), epKey(FROM), "answered to the frame's source");
    assert.equal(ack.msg.accepted, true);
    assert.deepEqual(ack.msg.jap, ps.all[0]);
    assert.equal(ack.msg.keepaliveInterval, 10);
    assert.deepEqual(jap.targetsOf(GROUP).map((t) => epKey(t.endpoint)), ["10.0.0.5:8080"]);
  });

  test("a target that misses 3 keepalives is removed, not before; keepalives keep it", () => {
    const { env, jap, log } = setup();
    jap.handleJoin(join(5), FROM);
    jap.handleJoin(join(6), FROM);
    for (let i = 0; i < 6; i++) {
      env.t += 10_000;
      jap.handleJoin(keepalive(6), FROM);
      jap.tick();
    }
    assert.deepEqual(log(), ["add 10.0.0.5:8080", "add 10.0.0.6:8080", "remove 10.0.0.5:8080 expired"]);
    env.t = T0 + 60_000 + 30_000;
    jap.tick();
    assert.equal(jap.targetCount, 1, "exactly 3 intervals after the last keepalive: kept");
    env.t += 1;
    jap.tick();
    assert.equal(jap.targetCount, 0);
    assert.equal(jap.counters.expired, 2);
  });

  test("a leave removes the target at once", () => {
    const { jap, log } = setup();
    jap.handleJoin(join(5), FROM);
    jap.handleLeave(leave(5));
    jap.handleLeave(leave(5));
    assert.deepEqual(log(), ["add 10.0.0.5:8080", "remove 10.0.0.5:8080 leave"]);
  });

  test("0 -> 1 targets sends REGISTER to the group's R RAPs; more targets send nothing; 1 -> 0 sends UNREGISTER to them", () => {
    const { env, ps, jap } = setup();
    const raps = ps.ring().raps(GROUP, 2);
    jap.handleJoin(join(5), FROM);
    jap.flush();
    const reg = env.take("register");
    assert.deepEqual(reg.map((s) => ps.byEndpoint(s.to)?.id).sort(), [...raps].sort());
    for (const s of reg) assert.deepEqual(s.msg.entries.map((e) => [sameTa(e.ta, GROUP), e.load]), [[true, 1]]);
    jap.handleJoin(join(6), FROM);
    jap.handleJoin(keepalive(5), FROM);
    jap.handleLeave(leave(6));
    jap.flush();
    assert.deepEqual(env.take().filter((s) => s.msg.type !== "join-ack"), [], "churn behind the first target is not the RAPs' business");
    jap.handleLeave(leave(5));
    jap.flush();
    const unreg = env.take("unregister");
    assert.deepEqual(unreg.map((s) => ps.byEndpoint(s.to)?.id).sort(), [...raps].sort());
  });

  test("each RAP is refreshed every refresh interval with the load figure (rounds start within one interval, staggered by proxy id)", () => {
    const { env, jap } = setup({ load: (_ta, n) => n * 100 });
    jap.handleJoin(join(5), FROM);
    jap.handleJoin(join(6), FROM);
    jap.flush();
    env.take();
    const rounds: number[] = [];
    for (let s = 1; s <= 150; s++) {
      env.t += 1000;
      if (s % 10 === 0) for (const l of [5, 6]) jap.handleJoin(keepalive(l), FROM);
      jap.tick();
      jap.flush();
      const refresh = env.take("refresh");
      if (refresh.length === 0) continue;
      assert.equal(refresh.length, 2, "one frame to each of the 2 RAPs");
      for (const f of refresh) assert.deepEqual(f.msg.entries.map((e) => e.load), [200]);
      rounds.push(s);
    }
    assert.ok(rounds[0] > 30 && rounds[0] <= 61, `first round at ${rounds[0]} s`);
    assert.deepEqual(rounds.slice(1).map((s, i) => s - rounds[i]), [30, 30, 30].slice(0, rounds.length - 1));
    assert.ok(rounds.length >= 3);
  });

  test("registrations of many groups to the same RAP are batched into few frames", () => {
    const { env, jap } = setup();
    for (let i = 0; i < 200; i++) jap.handleJoin(join(5, { protocol: "udp", address: ip4(203, 0, 113, 10), port: 1000 + i }), FROM);
    jap.flush();
    const reg = env.take("register");
    const entries = reg.reduce((n, s) => n + s.msg.entries.length, 0);
    assert.equal(entries, 400, "200 groups x 2 RAPs");
    assert.ok(reg.length <= 5 * Math.ceil(400 / 48), `${reg.length} frames`);
  });

  test("when the ring changes, groups whose RAP set changed register with their new RAPs", () => {
    const { env, ps, jap } = setup();
    jap.handleJoin(join(5), FROM);
    jap.flush();
    env.take();
    const [primary] = ps.ring().raps(GROUP, 2);
    ps.kill(primary);
    jap.ringChanged();
    jap.flush();
    const next = ps.ring().raps(GROUP, 2);
    assert.deepEqual(jap.rapsOf(GROUP), next);
    const reg = env.take("register");
    assert.equal(reg.length, 1, "only the RAP that is new to the set");
    assert.equal(ps.byEndpoint(reg[0].to)?.id, next[1]);
  });

  test("a keepalive from an unknown target is a join (the nearest proxy changed) and is answered", () => {
    const { env, jap, log } = setup();
    jap.handleJoin(keepalive(5), FROM);
    assert.deepEqual(log(), ["add 10.0.0.5:8080"]);
    assert.equal(env.take("join-ack").length, 1);
    jap.handleJoin(keepalive(5), FROM);
    assert.equal(env.take("join-ack").length, 0, "a known target's keepalive is not answered");
    assert.equal(jap.counters.rejoins, 1);
  });

  test("a join whose target changed weight, label or awareness updates it", () => {
    const { jap, log } = setup();
    jap.handleJoin(join(5), FROM);
    jap.handleJoin({ type: "join", ta: GROUP, target: targetAt(5, 8080, { weight: 3, label: "eu" }) }, FROM);
    assert.deepEqual(log(), ["add 10.0.0.5:8080", "update 10.0.0.5:8080"]);
    assert.equal(jap.targetsOf(GROUP)[0].weight, 3);
  });

  test("a target of the other address family, or a full group, is refused with a reason", () => {
    const { env, jap } = setup();
    const v6 = { endpoint: ep(new Uint8Array(16).fill(1), 80), weight: 1, label: null, aware: false };
    jap.handleJoin({ type: "join", ta: GROUP, target: v6 }, FROM);
    assert.deepEqual(env.take("join-ack").map((s) => [s.msg.accepted, s.msg.reason]), [[false, "family-mismatch"]]);
    const small = setup();
    const full = new Jap({ self: small.ps.all[0], now: small.env.now, send: small.env.send, ring: small.ps.ring, proxy: small.ps.proxy, maxTargetsPerGroup: 1 });
    full.handleJoin(join(5), FROM);
    full.handleJoin(join(6), FROM);
    assert.deepEqual(small.env.take("join-ack").map((s) => s.msg.reason), ["none", "full"]);
    assert.equal(full.targetCount, 1);
  });
});

describe("JAP admission and install", () => {
  test("new targets are admitted at most joinsPerSecond over all sources: joins past it are dropped unanswered and counted", () => {
    const { env, jap } = setup({ joinsPerSecond: 10, joinBurst: 4 });
    for (let i = 0; i < 10; i++) jap.handleJoin(join(10 + i), ep(ip4(10, 1, i, 1), 40000 + i));
    assert.equal(jap.targetCount, 4);
    assert.equal(jap.counters.throttled, 6);
    assert.equal(env.take("join-ack").length, 4, "a throttled join is not answered: the joiner retries with backoff");
    jap.handleJoin(keepalive(10), FROM);
    assert.equal(jap.counters.keepalives, 1, "keepalives of admitted targets are not throttled");
    env.t += 100;
    jap.handleJoin(join(30), FROM);
    assert.equal(jap.targetCount, 5, "one admission back after 100 ms at 10/s");
  });

  test("with deferInstall a new target is acknowledged, counted and registered only once confirmed installed; a retry meanwhile is not answered twice", () => {
    const { env, ps, jap, log } = setup({ deferInstall: true });
    jap.handleJoin(join(5), FROM);
    assert.deepEqual(log(), ["add 10.0.0.5:8080"], "the owner is told at once, to install it");
    jap.handleJoin(join(5), FROM);
    jap.flush();
    assert.equal(env.take("join-ack").length, 0);
    assert.equal(env.take("register").length, 0, "nothing registered before the install");
    assert.equal(jap.targetCount, 0);
    assert.equal(jap.pendingCount, 1);
    assert.deepEqual(jap.targetsOf(GROUP), []);
    jap.confirm(GROUP, targetAt(5).endpoint, "none");
    jap.flush();
    const acks = env.take("join-ack");
    assert.deepEqual(acks.map((a) => [a.msg.accepted, a.msg.reason]), [[true, "none"]]);
    assert.equal(env.take("register").length, ps.ring().raps(GROUP, 2).length);
    assert.equal(jap.targetCount, 1);
    assert.equal(jap.pendingCount, 0);
  });

  test("a refused install is a refused join: the joiner gets the reason, and the target is neither counted nor registered", () => {
    const { env, jap } = setup({ deferInstall: true });
    jap.handleJoin(join(5), FROM);
    jap.confirm(GROUP, targetAt(5).endpoint, "dataplane-full");
    jap.flush();
    assert.deepEqual(env.take("join-ack").map((a) => [a.msg.accepted, a.msg.reason]), [[false, "dataplane-full"]]);
    assert.equal(env.take("register").length, 0);
    assert.equal(jap.targetCount, 0);
    assert.equal(jap.groupCount, 0);
    assert.equal(jap.counters.installRefused, 1);
    jap.handleJoin(join(5), FROM);
    assert.equal(jap.pendingCount, 1, "a later join is tried again");
  });
});

describe("JAP behind the node's authentication", () => {
  function node() {
    const t = { now: T0 };
    const sent: { to: Endpoint; bytes: Uint8Array }[] = [];
    const events: TargetEvent[] = [];
    const n = new ControlNode({
      id: "ap-0",
      endpoint: ep(ip4(192, 0, 2, 1), 7400),
      clusterKey: CLUSTER,
      groupKey: (ta) => (sameTa(ta, GROUP) ? KEY : undefined),
      seeds: [],
      now: () => t.now,
      send: (to, bytes) => sent.push({ to, bytes }),
      onTarget: (e) => events.push(e),
      rateLimit: { ratePerSecond: 1, burst: 3 },
    });
    return { n, t, sent, events };
  }
  const signer = (key: Uint8Array) => new Authenticator({ groupKey: () => key, now: () => T0 });

  test("a join signed with the group's key is accepted; a forged one (wrong key) is rejected and counted", () => {
    const { n, events } = node();
    n.receive(FROM, signer(KEY_B).seal(join(5)));
    assert.equal(events.length, 0);
    assert.equal(n.stats().rejected["bad-mac"], 1);
    n.receive(FROM, signer(KEY).seal(join(5)));
    assert.equal(events.length, 1);
  });

  test("a join for a group this proxy has no key for is rejected as unknown-group", () => {
    const { n, events } = node();
    n.receive(FROM, signer(KEY_B).seal(join(5, GROUP_B)));
    assert.equal(events.length, 0);
    assert.equal(n.stats().rejected["unknown-group"], 1);
  });

  test("a replayed join is rejected, and a flood from one source is rate limited before any MAC is computed", () => {
    const { n, events, t } = node();
    const frame = signer(KEY).seal(join(5));
    n.receive(FROM, frame);
    n.receive(FROM, frame);
    assert.equal(n.stats().rejected.replayed, 1);
    for (let i = 0; i < 10; i++) n.receive(FROM, signer(KEY).seal(join(5)));
    assert.equal(n.stats().rejected["rate-limited"], 10 - 1, "burst 3: two used above, one more passes");
    t.now += 1000;
    n.receive(FROM, signer(KEY).seal(join(5)));
    assert.equal(n.stats().rejected["rate-limited"], 9, "a token came back after 1 s");
    assert.equal(events.length, 1);
  });
});
