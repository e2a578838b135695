// The overlay's data path in the core (README "Reaching an overlay"), one
// named case per behaviour, on three nodes in one process: a client of n1
// talks to a remote host R whose replies enter the overlay at n2.

import { beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { AuxFlag, OverlayKind, Reason, Verdict } from "../../assembly/shared/abi.js";
import { reasonName } from "../../src/core/dataplane.js";
import { buildPacket, checksumsValid } from "../helpers/packets.js";
import { CLIENT_KEY, NODE_KEY, OverlayNet, PORT, clientFrame, fmt, innerOf, ip4, outer, udp, u32 } from "../helpers/overlay.js";
import { sealFrame } from "../../src/net/overlay-frame.js";

const NODES = [
  { id: "n1", address: "10.255.0.1" },
  { id: "n2", address: "10.255.0.2" },
  { id: "n3", address: "10.255.0.3" },
];
const CLIENT = { address: "192.0.2.50", port: 40000 };
const C = "100.64.0.2";
const R = "198.18.1.2";
const SYN = 0x02, SYNACK = 0x12, ACK = 0x10;

const tcp = (src: string, sport: number, dst: string, dport: number, flags: number, payload = new Uint8Array(32)): Uint8Array =>
  buildPacket({ family: 4, proto: "tcp", src: ip4(src), dst: ip4(dst), sport, dport, tcpFlags: flags, payload });

/** The TA (address, port) a packet was NATed to: its source. */
const ta = (p: Uint8Array): { a: string; p: number } => ({ a: fmt(p.subarray(12, 16)), p: (p[20] << 8) | p[21] });

let net: OverlayNet;
beforeEach(() => {
  net = new OverlayNet(NODES);
});

const drop = (r: { verdict: Verdict; reason: number }): string => (r.verdict === Verdict.Drop ? reasonName(r.reason) : `verdict ${r.verdict}`);

/** The client opens a connection through n1; returns n1's output (the NATed SYN) and the TA. */
function open(time = 1000): { out: Uint8Array; a: string; p: number } {
  const r = net.node("n1").one(clientFrame(tcp(C, 5555, R, 80, SYN), CLIENT, "10.255.0.1", time), time);
  assert.equal(r.verdict, Verdict.Forward, drop(r));
  return { out: r.out, ...ta(r.out) };
}

describe("outbound: client -> local node -> remote host", () => {
  test("a client's first packet is NATed to a TA of the local node's own blocks and sent straight to the remote host", () => {
    const { out, a, p } = open();
    assert.equal(fmt(out.subarray(16, 20)), R);
    assert.equal((out[22] << 8) | out[23], 80);
    assert.equal(net.partition.ownerOf(ip4(a), p), "n1");
    assert.deepEqual(checksumsValid(out), { ip: true, l4: true, quoted: true });
    const s = net.node("n1").dp.overlay!.stats();
    assert.equal(s.fromClient, 1);
    assert.equal(s.direct, 1);
    assert.equal(s.flowsLive, 1);
  });

  test("every packet of the connection keeps its TA", () => {
    const first = open();
    for (let i = 0; i < 5; i++) {
      const r = net.node("n1").one(clientFrame(tcp(C, 5555, R, 80, ACK), CLIENT, "10.255.0.1"));
      assert.deepEqual(ta(r.out), { a: first.a, p: first.p });
    }
  });

  test("a TCP segment other than SYN with no binding is dropped as no-flow", () => {
    const r = net.node("n1").one(clientFrame(tcp(C, 5555, R, 80, ACK), CLIENT, "10.255.0.1"));
    assert.equal(drop(r), "no-flow");
  });
});

describe("return path: remote host -> remote node -> owner -> client", () => {
  test("a reply that enters at the owner goes down the client's tunnel, reverse-NATed to the client's address and port", () => {
    const { a, p } = open();
    const r = net.node("n1").one(tcp(R, 80, a, p, SYNACK));
    assert.equal(r.verdict, Verdict.Forward, drop(r));
    const o = outer(r.out);
    assert.deepEqual([o.src, o.sport, o.dst, o.dport], ["10.255.0.1", PORT, CLIENT.address, CLIENT.port]);
    assert.ok(o.frame.ok && o.frame.kind === OverlayKind.ClientReturn);
    const inner = innerOf(r.out);
    assert.deepEqual(inner, tcp(R, 80, C, 5555, SYNACK), "exactly the reply the client expects");
    assert.equal(net.node("n1").dp.overlay!.stats().repliesDirect, 1);
  });

  test("a reply that enters at another node is tunnelled to the owner, tagged with that node, and reaches the client the same", () => {
    const { a, p } = open();
    const relayed = net.node("n2").one(tcp(R, 80, a, p, SYNACK));
    assert.equal(relayed.verdict, Verdict.Forward, drop(relayed));
    assert.ok(relayed.aux & AuxFlag.Encapsulated);
    const o = outer(relayed.out);
    assert.equal(o.dst, "10.255.0.1");
    assert.equal(o.dport, PORT);
    assert.ok(o.frame.ok && o.frame.kind === OverlayKind.Reply && o.frame.sender === u32(ip4("10.255.0.2")));
    assert.deepEqual(o.frame.ok && o.frame.inner, tcp(R, 80, a, p, SYNACK), "the reply travels unmodified");
    const r = net.node("n1").one(relayed.out);
    assert.equal(r.verdict, Verdict.Forward, drop(r));
    assert.deepEqual(innerOf(r.out), tcp(R, 80, C, 5555, SYNACK));
    assert.equal(net.node("n2").dp.overlay!.stats().relayedToOwner, 1);
    assert.equal(net.node("n1").dp.overlay!.stats().repliesViaNode, 1);
  });

  test("after a reply through the remote node, the client's packets to that host go through the remote node, which sends them from the TA", () => {
    const { a, p, out: direct } = open();
    net.node("n1").one(net.node("n2").one(tcp(R, 80, a, p, SYNACK)).out);
    const r = net.node("n1").one(clientFrame(tcp(C, 5555, R, 80, ACK), CLIENT, "10.255.0.1"));
    const o = outer(r.out);
    assert.equal(o.dst, "10.255.0.2");
    assert.ok(o.frame.ok && o.frame.kind === OverlayKind.SendOut && o.frame.sender === u32(ip4("10.255.0.1")));
    const sent = net.node("n2").one(r.out);
    assert.equal(sent.verdict, Verdict.Forward, drop(sent));
    assert.deepEqual(sent.out, tcp(a, p, R, 80, ACK), "the remote node emits the owner's NATed packet byte for byte");
    assert.deepEqual(ta(direct), { a, p });
    assert.equal(net.node("n1").dp.overlay!.stats().viaRemote, 1);
    assert.equal(net.node("n2").dp.overlay!.stats().sentOut, 1);
  });

  test("when the remote node goes, the local node sends to the host directly again", () => {
    const { a, p } = open();
    net.node("n1").one(net.node("n2").one(tcp(R, 80, a, p, SYNACK)).out);
    net.setAlive("n2", false);
    const r = net.node("n1").one(clientFrame(tcp(C, 5555, R, 80, ACK), CLIENT, "10.255.0.1"));
    assert.equal(r.verdict, Verdict.Forward, drop(r));
    assert.deepEqual(r.out, tcp(a, p, R, 80, ACK));
  });

  test("the cached remote node is used for cacheSeconds after the last reply through it, then direct again", () => {
    const { a, p } = open(1000);
    net.node("n1").one(net.node("n2").one(tcp(R, 80, a, p, SYNACK), 1000).out, 1000);
    const via = net.node("n1").one(clientFrame(tcp(C, 5555, R, 80, ACK), CLIENT, "10.255.0.1", 1030), 1030);
    assert.equal(outer(via.out).dst, "10.255.0.2");
    const later = net.node("n1").one(clientFrame(tcp(C, 5555, R, 80, ACK), CLIENT, "10.255.0.1", 1031), 1031);
    assert.deepEqual(later.out, tcp(a, p, R, 80, ACK));
  });

  test("replies that move to another node move the cache with them", () => {
    const { a, p } = open();
    net.node("n1").one(net.node("n2").one(tcp(R, 80, a, p, SYNACK)).out);
    net.node("n1").one(net.node("n3").one(tcp(R, 80, a, p, ACK)).out);
    const r = net.node("n1").one(clientFrame(tcp(C, 5555, R, 80, ACK), CLIENT, "10.255.0.1"));
    assert.equal(outer(r.out).dst, "10.255.0.3");
    net.node("n1").one(tcp(R, 80, a, p, ACK)); // now straight to the owner
    const direct = net.node("n1").one(clientFrame(tcp(C, 5555, R, 80, ACK), CLIENT, "10.255.0.1"));
    assert.deepEqual(direct.out, tcp(a, p, R, 80, ACK));
  });

  test("a reply too big for a frame (DF) is answered with fragmentation needed carrying the MTU left inside the overlay", () => {
    const { a, p } = open();
    const big = buildPacket({ family: 4, proto: "tcp", src: ip4(R), dst: ip4(a), sport: 80, dport: p, tcpFlags: ACK, payload: new Uint8Array(1460) });
    const r = net.node("n2").one(big);
    assert.equal(r.verdict, Verdict.Forward);
    assert.ok(r.aux & AuxFlag.Generated);
    assert.equal(r.out[9], 1);
    assert.equal(fmt(r.out.subarray(16, 20)), R);
    assert.deepEqual([r.out[20], r.out[21], (r.out[26] << 8) | r.out[27]], [3, 4, 1500 - 52]);
    assert.equal(net.node("n2").dp.counters().drops["packet-too-big"], 1);
  });
});

describe("a node joins: the connections of the blocks it takes go on", () => {
  /** n3 is down while the client opens connections through n1, then joins; returns one whose TA block n3 took from n1. */
  function moved(): { a: string; p: number; cport: number } {
    net.setAlive("n3", false);
    const conns = Array.from({ length: 40 }, (_, i) => {
      const r = net.node("n1").one(clientFrame(tcp(C, 6000 + i, R, 80, SYN), CLIENT, "10.255.0.1"));
      return { ...ta(r.out), cport: 6000 + i };
    });
    net.setAlive("n3", true);
    const c = conns.find((x) => net.partition.ownerOf(ip4(x.a), x.p) === "n3");
    assert.ok(c, "a connection of a block n3 took");
    return c!;
  }

  test("a reply relayed to the new owner is handed to the block's previous owner, which holds the binding, and reaches the client", () => {
    const { a, p, cport } = moved();
    const toOwner = net.node("n2").one(tcp(R, 80, a, p, SYNACK));
    assert.equal(outer(toOwner.out).dst, "10.255.0.3");
    const handed = net.node("n3").one(toOwner.out);
    assert.equal(handed.verdict, Verdict.Forward, drop(handed));
    const o = outer(handed.out);
    assert.equal(o.dst, "10.255.0.1");
    assert.ok(o.frame.ok && o.frame.kind === OverlayKind.Reply && o.frame.flags === 1 && o.frame.sender === u32(ip4("10.255.0.2")), "flagged, naming the node it entered at");
    const down = net.node("n1").one(handed.out);
    assert.deepEqual(innerOf(down.out), tcp(R, 80, C, cport, SYNACK));
    assert.equal(net.node("n3").dp.overlay!.stats().handedOver, 1);
    const next = net.node("n1").one(clientFrame(tcp(C, cport, R, 80, ACK), CLIENT, "10.255.0.1"));
    assert.equal(outer(next.out).dst, "10.255.0.2", "the binding's node caches the node the reply entered at");
  });

  test("a reply that enters at the previous owner itself is served there", () => {
    const { a, p, cport } = moved();
    const r = net.node("n1").one(tcp(R, 80, a, p, SYNACK));
    assert.deepEqual(innerOf(r.out), tcp(R, 80, C, cport, SYNACK));
    assert.equal(net.node("n1").dp.overlay!.stats().repliesDirect, 1);
  });

  test("a handed-over reply with no binding at the runner-up either is dropped there, never handed on", () => {
    const { a } = moved();
    let port = 2000;
    while (net.partition.ownerOf(ip4(a), port) !== "n3" || net.partition.runnerUp(net.partition.blockOf(ip4(a), port)) !== "n1") port++;
    const handed = net.node("n3").one(tcp(R, 80, a, port, ACK));
    assert.equal(outer(handed.out).dst, "10.255.0.1");
    assert.equal(drop(net.node("n1").one(handed.out)), "overlay-no-binding");
  });
});

describe("every drop has a reason", () => {
  const cases: [string, string, () => { verdict: Verdict; reason: number }][] = [
    ["a client frame sealed with another key (no key, no relay)", "overlay-bad-tag",
      () => net.node("n1").one(clientFrame(tcp(C, 5555, R, 80, SYN), CLIENT, "10.255.0.1", 1000, new Uint8Array(16).fill(7)))],
    ["a client frame with one byte changed", "overlay-bad-tag", () => {
      const f = clientFrame(tcp(C, 5555, R, 80, SYN), CLIENT, "10.255.0.1");
      f[f.length - 1] ^= 1;
      return net.node("n1").one(f);
    }],
    ["a client frame stamped 31 s ago", "overlay-stale", () => net.node("n1").one(clientFrame(tcp(C, 5555, R, 80, SYN), CLIENT, "10.255.0.1", 969), 1000)],
    ["a frame shorter than its header", "overlay-malformed", () => net.node("n1").one(udp(CLIENT.address, 1, "10.255.0.1", PORT, new Uint8Array(10)))],
    ["a frame of an unknown version", "overlay-malformed", () => {
      const f = sealFrame(tcp(C, 5555, R, 80, SYN), OverlayKind.ClientData, CLIENT_KEY, 1000);
      f[9] = 2;
      return net.node("n1").one(udp(CLIENT.address, 1, "10.255.0.1", PORT, f));
    }],
    ["a client sealing a reply as if it were a node (it has no node key)", "overlay-bad-tag",
      () => net.node("n1").one(udp(CLIENT.address, 1, "10.255.0.1", PORT, sealFrame(tcp(R, 80, "203.0.113.9", 2000, ACK), OverlayKind.Reply, CLIENT_KEY, 1000, u32(ip4("10.255.0.2")))))],
    ["a node frame from an address that is not a node", "overlay-from-stranger",
      () => net.node("n1").one(udp("10.255.0.9", 1, "10.255.0.1", PORT, sealFrame(tcp(R, 80, "203.0.113.9", 2000, ACK), OverlayKind.Reply, NODE_KEY, 1000, u32(ip4("10.255.0.9")))))],
    ["a node frame from a node known dead", "overlay-from-stranger", () => {
      net.setAlive("n3", false);
      return net.node("n1").one(udp("10.255.0.3", 1, "10.255.0.1", PORT, sealFrame(tcp(R, 80, "203.0.113.9", 2000, ACK), OverlayKind.Reply, NODE_KEY, 1000, u32(ip4("10.255.0.3")))));
    }],
    ["a send-out whose inner packet is not from an overlay TA", "overlay-malformed",
      () => net.node("n2").one(udp("10.255.0.1", 1, "10.255.0.2", PORT, sealFrame(tcp("10.1.1.1", 80, R, 80, ACK), OverlayKind.SendOut, NODE_KEY, 1000, u32(ip4("10.255.0.1")))))],
    ["a packet to an overlay TA with no binding at its owner or its runner-up (where the owner hands it once)", "overlay-no-binding", () => {
      let port = 2000;
      while (net.partition.ownerOf(ip4("203.0.113.9"), port) !== "n1") port++;
      const handed = net.node("n1").one(tcp(R, 80, "203.0.113.9", port, ACK));
      return net.node(net.partition.runnerUp(net.partition.blockOf(ip4("203.0.113.9"), port))!).one(handed.out);
    }],
    ["a packet to an overlay address on a port outside the TA range", "overlay-no-binding", () => net.node("n1").one(tcp(R, 80, "203.0.113.9", 80, ACK))],
    ["ICMP to an overlay TA", "overlay-unsupported",
      () => net.node("n2").one(buildPacket({ family: 4, proto: "icmp", src: ip4(R), dst: ip4("203.0.113.9"), sport: 7, dport: 0, payload: new Uint8Array(8) }))],
    ["a client's ICMP", "overlay-unsupported",
      () => net.node("n1").one(clientFrame(buildPacket({ family: 4, proto: "icmp", src: ip4(C), dst: ip4(R), sport: 7, dport: 0, payload: new Uint8Array(8) }), CLIENT, "10.255.0.1"))],
    ["a client's packet to the overlay's own TAs", "overlay-unsupported", () => net.node("n1").one(clientFrame(tcp(C, 5555, "203.0.113.7", 3000, SYN), CLIENT, "10.255.0.1"))],
  ];
  for (const [name, reason, make] of cases) {
    test(`${name}: ${reason}`, () => {
      const r = make();
      assert.equal(drop(r), reason);
      assert.ok(Object.values(net.nodes.map((n) => n.dp.counters().drops[reason] ?? 0)).some((n) => n > 0));
    });
  }

  test("when every TA toward one remote endpoint is bound, a new connection to it is dropped as nat-ports-exhausted, one elsewhere still gets a TA", () => {
    const tiny = new OverlayNet([NODES[0]], { space: { prefixes: ["203.0.113.9/32"], ports: [3000, 3003], blockPorts: 2 } });
    const n1 = tiny.node("n1");
    for (let c = 0; c < 4; c++) assert.equal(n1.one(clientFrame(tcp(C, 6000 + c, R, 80, SYN), CLIENT, "10.255.0.1")).verdict, Verdict.Forward);
    assert.equal(drop(n1.one(clientFrame(tcp(C, 7000, R, 80, SYN), CLIENT, "10.255.0.1"))), "nat-ports-exhausted");
    assert.equal(n1.one(clientFrame(tcp(C, 7000, R, 443, SYN), CLIENT, "10.255.0.1")).verdict, Verdict.Forward);
  });
});

test("overlay reasons are named as the README lists them", () => {
  assert.deepEqual(
    [Reason.OverlayMalformed, Reason.OverlayBadTag, Reason.OverlayStale, Reason.OverlayFromStranger, Reason.OverlayNoBinding, Reason.OverlayUnsupported].map(reasonName),
    ["overlay-malformed", "overlay-bad-tag", "overlay-stale", "overlay-from-stranger", "overlay-no-binding", "overlay-unsupported"],
  );
});
