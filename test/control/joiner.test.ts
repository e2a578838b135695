// The target side: join with backoff until acknowledged, keepalives, leave.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { Joiner, type JoinerEvent } from "../../src/control/joiner.js";
import { Authenticator } from "../../src/control/auth.js";
import type { Message, ProxyRef } from "../../src/control/message.js";
import { epKey, type Endpoint } from "../../src/control/ta.js";
import { ep, GROUP, ip4, KEY, KEY_B, targetAt } from "./arbitraries.js";
import { T0 } from "./env.js";
import { cluster } from "./cluster.js";

const ANY = ep(ip4(198, 51, 100, 1), 7400);
const JAP: ProxyRef = { id: "ap-1", endpoint: ep(ip4(192, 0, 2, 2), 7400) };
const JAP2: ProxyRef = { id: "ap-2", endpoint: ep(ip4(192, 0, 2, 3), 7400) };

function setup() {
  const clock = { t: T0 };
  const wire: { to: Endpoint; msg: Message }[] = [];
  const proxy = new Authenticator({ groupKey: () => KEY, now: () => clock.t });
  const events: JoinerEvent[] = [];
  const j = new Joiner({
    ta: GROUP,
    target: targetAt(5),
    key: KEY,
    anycast: ANY,
    now: () => clock.t,
    send: (to, bytes) => {
      const r = proxy.open(bytes);
      assert.ok(r.ok, "the joiner's frames verify with the group key");
      if (r.ok) wire.push({ to, msg: r.message });
    },
    retryInitialMs: 500,
    retryMaxMs: 4000,
    random: () => 0.5,
    onState: (e) => events.push(e),
  });
  const ack = (jap: ProxyRef, opts: { accepted?: boolean; interval?: number; key?: Uint8Array } = {}) => {
    const signer = new Authenticator({ groupKey: () => opts.key ?? KEY, now: () => clock.t });
    const accepted = opts.accepted ?? true;
    return signer.seal({ type: "join-ack", ta: GROUP, endpoint: targetAt(5).endpoint, accepted, reason: accepted ? "none" : "full", jap, keepaliveInterval: accepted ? opts.interval ?? 10 : 0 });
  };
  /** Advance in 10 ms steps, ticking; returns the sends in that span. */
  const run = (ms: number) => {
    const start = wire.length;
    const end = clock.t + ms;
    while (clock.t < end) {
      clock.t += 10;
      j.tick();
    }
    return wire.slice(start);
  };
  return { clock, wire, j, events, ack, run };
}

describe("Joiner", () => {
  test("JOIN is sent to the anycast address and retried with exponential backoff (capped) until acknowledged", () => {
    const { clock, wire, j, ack } = setup();
    const times: number[] = [];
    j.start();
    times.push(clock.t);
    for (let i = 0; i < 12_000; i++) {
      clock.t += 1;
      const before = wire.length;
      j.tick();
      if (wire.length > before) times.push(clock.t);
    }
    assert.ok(wire.every((s) => s.msg.type === "join" && epKey(s.to) === epKey(ANY)));
    // With the jitter source at 0.5 each wait is 0.75 x the delay: 500, 1000, 2000, then the 4 s cap.
    assert.deepEqual(times.slice(1).map((t, i) => t - times[i]), [375, 750, 1500, 3000, 3000, 3000]);
    j.receive(JAP.endpoint, ack(JAP));
    const n = wire.length;
    clock.t += 5000;
    j.tick();
    assert.deepEqual(wire.slice(n).map((s) => s.msg.type), [], "no JOIN once acknowledged (the first keepalive is due at 10 s)");
  });

  test("a JOIN_ACK makes it joined; keepalives then go every interval to the anycast address", () => {
    const { wire, j, events, ack, run } = setup();
    j.start();
    j.receive(JAP.endpoint, ack(JAP, { interval: 2 }));
    assert.equal(j.state, "joined");
    assert.deepEqual(j.jap, JAP);
    wire.length = 0;
    const sent = run(10_000);
    assert.deepEqual(sent.map((s) => s.msg.type), ["keepalive", "keepalive", "keepalive", "keepalive", "keepalive"]);
    assert.ok(sent.every((s) => epKey(s.to) === epKey(ANY)));
    assert.deepEqual(events.map((e) => e.state), ["joining", "joined"]);
  });

  test("a JOIN_ACK from a different JAP is reported as a move", () => {
    const { j, events, ack } = setup();
    j.start();
    j.receive(JAP.endpoint, ack(JAP));
    j.receive(JAP2.endpoint, ack(JAP2));
    assert.deepEqual(j.jap, JAP2);
    assert.deepEqual(events.map((e) => [e.state, e.jap?.id, e.moved]), [["joining", undefined, undefined], ["joined", "ap-1", false], ["joined", "ap-2", true]]);
  });

  test("a forged JOIN_ACK (wrong key) or a replayed one is ignored", () => {
    const { j, ack } = setup();
    j.start();
    j.receive(JAP.endpoint, ack(JAP, { key: KEY_B }));
    assert.equal(j.state, "joining");
    assert.equal(j.rejections["bad-mac"], 1);
    const good = ack(JAP);
    j.receive(JAP.endpoint, good);
    j.receive(JAP.endpoint, good);
    assert.equal(j.rejections.replayed, 1);
  });

  test("a rejection is reported with its reason and the join is retried after the longest backoff", () => {
    const { wire, j, events, ack, run } = setup();
    j.start();
    j.receive(JAP.endpoint, ack(JAP, { accepted: false }));
    assert.equal(j.state, "rejected");
    assert.equal(events.at(-1)?.reason, "full");
    wire.length = 0;
    assert.equal(run(3990).length, 0);
    assert.equal(run(20).filter((s) => s.msg.type === "join").length, 1);
  });

  test("stop() sends LEAVE to the anycast address and to the JAP's unicast address", () => {
    const { wire, j, ack } = setup();
    j.start();
    j.receive(JAP.endpoint, ack(JAP));
    wire.length = 0;
    j.stop();
    assert.deepEqual(wire.map((s) => [s.msg.type, epKey(s.to)]), [["leave", epKey(ANY)], ["leave", epKey(JAP.endpoint)]]);
    assert.equal(j.state, "stopped");
  });

  test("against a real cluster: a JOIN lost on the way is retried and the target is served", () => {
    const c = cluster(3, { groups: [{ ta: GROUP, key: KEY }] });
    c.advance(3000);
    let lost = 0;
    c.net.drop = (_f, _t, bytes) => bytes[3] === 1 && lost++ < 2; // the first two JOINs
    c.addJoiner(GROUP, KEY, 5, 2).start();
    c.advance(3000);
    assert.equal(lost, 3, "two lost, the third went through");
    assert.equal(c.joiners[0].state, "joined");
    assert.equal(c.nodes[2].jap.targetCount, 1);
  });
});
