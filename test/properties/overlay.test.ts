// Properties of the overlay's data path in the core: NAT bindings are unique
// and stable, and what the tunnels carry arrives byte for byte (frames the
// core seals open on the host and the other way round).

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Verdict } from "../../assembly/shared/abi.js";
import { reasonName } from "../../src/core/dataplane.js";
import { buildPacket, checksumsValid } from "../helpers/packets.js";
import { OverlayNet, clientFrame, fmt, innerOf, ip4 } from "../helpers/overlay.js";

const runs = Number(process.env.PIAS_FUZZ_RUNS ?? 100);
const NODES = [
  { id: "n1", address: "10.255.0.1" },
  { id: "n2", address: "10.255.0.2" },
];

interface Conn {
  client: number;
  cport: number;
  remote: number;
  rport: number;
  udp: boolean;
}
const conn = fc.record({
  client: fc.integer({ min: 0, max: 3 }),
  cport: fc.integer({ min: 1, max: 65535 }),
  remote: fc.integer({ min: 0, max: 3 }),
  rport: fc.constantFrom(53, 80, 443),
  udp: fc.boolean(),
});
const clientOf = (i: number) => ({ address: `192.0.2.${10 + i}`, port: 40000 + (i % 2) });
const remoteOf = (i: number) => `198.18.0.${1 + i}`;
const C = "100.64.0.2"; // every client uses the same address inside its tunnel: the tunnel endpoint tells them apart

const packet = (c: Conn, syn: boolean, payload = new Uint8Array(4)): Uint8Array =>
  buildPacket({ family: 4, proto: c.udp ? "udp" : "tcp", src: ip4(C), dst: ip4(remoteOf(c.remote)), sport: c.cport, dport: c.rport, tcpFlags: syn ? 0x02 : 0x10, payload });
const keyOf = (c: Conn) => `${c.client}/${c.cport}/${c.remote}/${c.rport}/${c.udp}`;

test("a flow's NAT binding is unique: every packet of a connection gets the same TA of the node's own blocks, and no two live connections share (protocol, TA, remote endpoint)", () => {
  // a small space, so that connections to one remote endpoint compete for the local node's few TAs (12 here)
  const space = { prefixes: ["203.0.113.8/31"], ports: [2000, 2015] as const, blockPorts: 2 };
  assert.equal(new OverlayNet(NODES, { space }).partition.shares().get("n1"), 6);
  fc.assert(fc.property(fc.array(conn, { minLength: 1, maxLength: 40 }), fc.array(fc.nat(), { maxLength: 60 }), (conns, repeats) => {
    const net = new OverlayNet(NODES, { space });
    const n1 = net.node("n1");
    const taOf = new Map<string, string>();
    const holder = new Map<string, string>();
    const refused = new Set<string>();
    const order = [...conns.map((c) => [c, true] as const), ...repeats.map((i) => [conns[i % conns.length], false] as const)];
    for (const [c, first] of order) {
      if (refused.has(keyOf(c))) continue;
      const r = n1.one(clientFrame(packet(c, first || c.udp), clientOf(c.client), "10.255.0.1"));
      if (r.verdict !== Verdict.Forward) {
        assert.equal(reasonName(r.reason), "nat-ports-exhausted", "the only reason a connection's first packet may fail");
        refused.add(keyOf(c));
        continue;
      }
      const a = fmt(r.out.subarray(12, 16));
      const p = (r.out[20] << 8) | r.out[21];
      assert.equal(net.partition.ownerOf(ip4(a), p), "n1", "a TA of the local node's own blocks");
      const t = `${a}:${p}`;
      const k = keyOf(c);
      if (taOf.has(k)) assert.equal(t, taOf.get(k), "the same TA for every packet of the connection");
      taOf.set(k, t);
      const binding = `${c.udp}/${t}/${remoteOf(c.remote)}:${c.rport}`;
      assert.ok(!holder.has(binding) || holder.get(binding) === k, `${binding} bound twice`);
      holder.set(binding, k);
    }
  }), { numRuns: runs });
});

const reply = fc.record({
  udp: fc.boolean(),
  payload: fc.uint8Array({ maxLength: 1300 }),
  flags: fc.constantFrom(0x10, 0x12, 0x18, 0x11),
  ttl: fc.integer({ min: 1, max: 255 }),
  tos: fc.integer({ min: 0, max: 255 }),
  ipId: fc.integer({ min: 0, max: 0xffff }),
});

test("tunnelled and decapsulated packets round-trip byte for byte: client -> node, remote node -> owner -> client, owner -> remote node -> host", () => {
  fc.assert(fc.property(conn, reply, reply, (c, out, back) => {
    const net = new OverlayNet(NODES);
    const [n1, n2] = [net.node("n1"), net.node("n2")];
    const spec = { family: 4 as const, src: ip4(C), dst: ip4(remoteOf(c.remote)), sport: c.cport, dport: c.rport, proto: c.udp ? "udp" as const : "tcp" as const, tcpFlags: 0x02 };
    const first = buildPacket({ ...spec, payload: out.payload, ttl: out.ttl, tos: out.tos, ipId: out.ipId });
    const r = n1.one(clientFrame(first, clientOf(c.client), "10.255.0.1"));
    assert.equal(r.verdict, Verdict.Forward, reasonName(r.reason));
    const a = r.out.subarray(12, 16).slice();
    const p = (r.out[20] << 8) | r.out[21];
    // client -> node: only the source address and port (and checksums) changed
    assert.deepEqual(r.out, buildPacket({ ...spec, src: a, sport: p, payload: out.payload, ttl: out.ttl, tos: out.tos, ipId: out.ipId }));
    // remote host -> remote node -> owner -> client
    const answer = { family: 4 as const, proto: spec.proto, src: spec.dst, dst: a, sport: c.rport, dport: p, tcpFlags: back.flags, payload: back.payload, ttl: back.ttl, tos: back.tos, ipId: back.ipId };
    const relayed = n2.one(buildPacket(answer));
    assert.equal(relayed.verdict, Verdict.Forward, reasonName(relayed.reason));
    assert.deepEqual(innerOf(relayed.out), buildPacket(answer), "the remote node's frame carries the reply unmodified");
    const down = n1.one(relayed.out);
    assert.equal(down.verdict, Verdict.Forward, reasonName(down.reason));
    const inner = innerOf(down.out);
    assert.deepEqual(inner, buildPacket({ ...answer, dst: ip4(C), dport: c.cport }), "the client gets the reply to its own address and port");
    assert.deepEqual(checksumsValid(inner), { ip: true, l4: true, quoted: true });
    // owner -> remote node -> host
    const next = buildPacket({ ...spec, tcpFlags: 0x10, payload: out.payload });
    const via = n1.one(clientFrame(next, clientOf(c.client), "10.255.0.1"));
    const sent = n2.one(via.out);
    assert.equal(sent.verdict, Verdict.Forward, reasonName(sent.reason));
    assert.deepEqual(sent.out, buildPacket({ ...spec, tcpFlags: 0x10, src: a, sport: p, payload: out.payload }), "the remote node sends the owner's NATed packet as it is");
  }), { numRuns: runs });
});
