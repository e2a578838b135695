// What the data plane knows of the PIAS system around it: peers, anycast
// prefixes, the control port, groups waiting for their rendezvous answer.

import { test } from "node:test";
import assert from "node:assert/strict";
import { DataPlane } from "../../src/core/dataplane.js";
import { HostWork, Reason, Verdict, AuxFlag } from "../../assembly/shared/abi.js";
import { buildPacket } from "../helpers/packets.js";
import { bytesOf } from "../helpers/dataplane.js";

function plane(): DataPlane {
  return DataPlane.create({
    address: "198.51.100.1",
    capacity: { flows: 1024, groups: 16, targets: 64 },
    peers: ["198.51.100.2", "198.51.100.3"],
    anycastPrefixes: ["203.0.113.0/24"],
    controlPort: 4217,
  }, [{ protocol: "udp", address: "203.0.113.10", port: 53, targets: [{ address: "192.0.2.11", port: 53 }] }]);
}

const udp = (dst: string, dport: number): Uint8Array =>
  buildPacket({ family: 4, proto: "udp", src: bytesOf("10.0.0.1"), dst: bytesOf(dst), sport: 5000, dport, payload: new Uint8Array(8) });

function tunnel(from: string, inner: Uint8Array): Uint8Array {
  const o = new Uint8Array(20 + inner.length);
  o.set([0x45, 0, o.length >> 8, o.length & 255, 0, 0, 0, 0, 64, 4, 0, 0, ...bytesOf(from), ...bytesOf("198.51.100.1")]);
  o.set(inner, 20);
  return o;
}

function one(dp: DataPlane, p: Uint8Array): { verdict: Verdict; reason: number; aux: number } {
  const b = dp.createBatch(1);
  b.add(p, { time: 1000 });
  dp.process(b);
  return { verdict: b.verdict(0), reason: b.reason(0), aux: b.aux(0) };
}

test("IP-in-IP is decapsulated only when it comes from a known proxy", () => {
  const dp = plane();
  const fromPeer = one(dp, tunnel("198.51.100.2", udp("203.0.113.10", 53)));
  assert.equal(fromPeer.verdict, Verdict.Forward);
  assert.ok(fromPeer.aux & AuxFlag.Decapsulated);
  assert.deepEqual(one(dp, tunnel("192.0.2.99", udp("203.0.113.10", 53))), { verdict: Verdict.Drop, reason: Reason.TunnelFromStranger, aux: 0 });
  assert.equal(dp.counters().drops["tunnel-from-stranger"], 1);
});

test("UDP to the control port of an anycast or the proxy's address goes to the host as a control message", () => {
  const dp = plane();
  for (const dst of ["203.0.113.10", "203.0.113.77", "198.51.100.1"]) {
    assert.deepEqual(one(dp, udp(dst, 4217)), { verdict: Verdict.ToHost, reason: HostWork.Control, aux: 0 }, dst);
  }
  assert.equal(one(dp, udp("192.0.2.200", 4217)).reason, Reason.NotForProxy, "not an address the proxies serve");
  assert.equal(dp.counters().toHost, 3);
});

test("a packet to an anycast address without a group, or to a group waiting for its JAPs, goes to the host to be resolved", () => {
  const dp = plane();
  assert.deepEqual(one(dp, udp("203.0.113.77", 53)), { verdict: Verdict.ToHost, reason: HostWork.Unresolved, aux: 0 });
  assert.equal(one(dp, udp("192.0.2.200", 53)).reason, Reason.NotForProxy);
  const key = dp.addGroup({ protocol: "udp", address: "203.0.113.77", port: 53, targets: [] });
  assert.equal(one(dp, udp("203.0.113.77", 53)).reason, Reason.NoTarget, "a group with no target and not pending drops");
  dp.setGroupPending(key, true);
  assert.deepEqual(one(dp, udp("203.0.113.77", 53)), { verdict: Verdict.ToHost, reason: HostWork.Unresolved, aux: 0 });
  // the JAPs arrive: installed as PIAS-aware targets, the IAP tunnels to them
  dp.addTarget(key, { address: "198.51.100.3", port: 53, aware: true });
  const r = one(dp, udp("203.0.113.77", 53));
  assert.equal(r.verdict, Verdict.Forward);
  assert.ok(r.aux & AuxFlag.Encapsulated);
});
