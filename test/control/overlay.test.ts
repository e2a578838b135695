// The overlay role of ControlNode (src/control/overlay.ts): the overlay
// nodes' own heartbeat ring, and discovery of the nearest overlay nodes
// through the overlay's group.

import { test } from "node:test";
import assert from "node:assert/strict";
import { ControlNode } from "../../src/control/node.js";
import { MemoryNetwork } from "../../src/control/memnet.js";
import { Authenticator } from "../../src/control/auth.js";
import { epKey, sameTa, type Endpoint, type TransportAddress } from "../../src/control/ta.js";
import type { DiscoverReplyMessage, Message } from "../../src/control/message.js";
import { CLUSTER, ep, ip4, targetAt } from "./arbitraries.js";

const GROUP: TransportAddress = { protocol: "udp", address: ip4(203, 0, 113, 0), port: 7480 };
const OVERLAY_KEY = new Uint8Array(32).fill(0x0e);
const PORT = 7400;

/** Proxies p0..p(n-1); those in `overlay` are overlay nodes (p0 nearest to p1, then p2, ...). */
function setup(n: number, overlay: number[]) {
  const net = new MemoryNetwork({ latencyMs: 5 });
  const endpoints = Array.from({ length: n }, (_, i) => ep(ip4(192, 0, 2, i + 1), PORT));
  const nodes = endpoints.map((endpoint, i) => {
    const node = new ControlNode({
      id: `p${i}`,
      endpoint,
      clusterKey: CLUSTER,
      groupKey: (ta) => (sameTa(ta, GROUP) && overlay.includes(i) ? OVERLAY_KEY : undefined),
      seeds: endpoints,
      now: net.now,
      send: net.sender(endpoint),
      incarnation: 1,
      random: () => 0.5,
      overlay: overlay.includes(i) ? { group: GROUP, port: 7480, seeds: endpoints, distance: (id) => Math.abs(Number(id.slice(1)) - i) * 10 } : undefined,
    });
    net.attach(endpoint, (from, bytes) => node.receive(from, bytes));
    return node;
  });
  const tick = (ms: number): void => {
    for (let t = 0; t < ms; t += 100) {
      net.run(net.now() + 100);
      nodes.forEach((node, i) => alive[i] && node.tick());
    }
  };
  const alive = new Array(n).fill(true);
  return { net, endpoints, nodes, tick, alive };
}

const liveOverlay = (node: ControlNode): string[] => node.overlay!.nodes().map((p) => p.id).sort();

test("overlay nodes find each other by their own heartbeats; a proxy that is not an overlay node never joins the overlay", () => {
  const s = setup(4, [0, 1, 2]);
  s.tick(2000);
  for (const i of [0, 1, 2]) assert.deepEqual(liveOverlay(s.nodes[i]), ["p0", "p1", "p2"]);
  assert.equal(s.nodes[3].overlay, null);
  assert.equal(s.nodes[0].membership.live().length, 4, "the proxies' own ring has all four");
  assert.ok(s.nodes[3].stats().unexpected > 0, "p3 ignores overlay heartbeats");
  assert.ok((s.nodes[0].stats().sent["overlay-heartbeat"] ?? 0) > 0);
});

test("an overlay node that stops is dead to the others after three missed heartbeats, and back when heard again", () => {
  const s = setup(3, [0, 1, 2]);
  const events: string[] = [];
  s.nodes[0].overlay!.onChange((ev) => events.push(`${ev.kind} ${ev.proxy.id}`));
  s.tick(2000);
  s.alive[2] = false;
  s.net.detach(s.endpoints[2]);
  s.tick(1500);
  assert.deepEqual(liveOverlay(s.nodes[0]), ["p0", "p1", "p2"], "not before three intervals");
  s.tick(2500);
  assert.deepEqual(liveOverlay(s.nodes[0]), ["p0", "p1"]);
  assert.ok(events.includes("down p2"));
  s.alive[2] = true;
  s.net.attach(s.endpoints[2], (from, bytes) => s.nodes[2].receive(from, bytes));
  s.tick(1500);
  assert.deepEqual(liveOverlay(s.nodes[0]), ["p0", "p1", "p2"]);
  assert.deepEqual(events.slice(-2), ["down p2", "up p2"]);
});

function discover(s: ReturnType<typeof setup>, at: number, key: Uint8Array, k = 2, exclude: Endpoint[] = []): { reply: DiscoverReplyMessage | null; auth: Authenticator } {
  const client = ep(ip4(10, 9, 0, 2), 40000);
  const auth = new Authenticator({ clusterKey: new Uint8Array(32), groupKey: (ta) => (sameTa(ta, GROUP) ? key : undefined), now: s.net.now });
  let reply: DiscoverReplyMessage | null = null;
  s.net.attach(client, (_from, bytes) => {
    const o = auth.open(bytes);
    if (o.ok && o.message.type === "discover-reply") reply = o.message;
  });
  s.net.send(client, s.endpoints[at], auth.seal({ type: "discover", ta: GROUP, k, mode: "nearest", exclude } as Message));
  s.tick(200);
  return { reply, auth };
}

test("a DISCOVER for the overlay's group signed with the overlay key gets the nearest live overlay nodes, the one asked first, as frame endpoints", () => {
  const s = setup(4, [0, 1, 2, 3]);
  s.tick(2000);
  const { reply } = discover(s, 1, OVERLAY_KEY);
  assert.ok(reply);
  const got = reply!.members.map((m) => `${m.label} ${epKey(m.endpoint)}`);
  assert.equal(got[0], "p1 192.0.2.2:7480");
  assert.ok(["p0 192.0.2.1:7480", "p2 192.0.2.3:7480"].includes(got[1]), got[1]);
  const rest = discover(s, 1, OVERLAY_KEY, 3, [ep(ip4(192, 0, 2, 2), 7480)]).reply!;
  assert.deepEqual(rest.members.map((m) => m.label).sort(), ["p0", "p2", "p3"], "excluded nodes are left out");
});

test("a DISCOVER signed with another key is rejected and answered with nothing", () => {
  const s = setup(2, [0, 1]);
  s.tick(2000);
  const { reply } = discover(s, 0, new Uint8Array(32).fill(0x55));
  assert.equal(reply, null);
  assert.equal(s.nodes[0].stats().rejected["bad-mac"], 1);
});

test("nobody joins the overlay's group, even with the overlay key", () => {
  const s = setup(2, [0, 1]);
  s.tick(2000);
  const client = ep(ip4(10, 9, 0, 2), 40000);
  const auth = new Authenticator({ clusterKey: new Uint8Array(32), groupKey: () => OVERLAY_KEY, now: s.net.now });
  s.net.send(client, s.endpoints[0], auth.seal({ type: "join", ta: GROUP, target: targetAt(7, 7480) }));
  s.tick(300);
  assert.equal(s.nodes[0].jap.targetCount, 0);
  assert.ok(s.nodes[0].stats().unexpected > 0);
});
