// Reloading a configuration through the library API keeps live flows.

import { test } from "node:test";
import assert from "node:assert/strict";
import { DataPlane } from "../../src/core/dataplane.js";
import { validateConfig } from "../../src/config/validate.js";
import { Reason, Verdict } from "../../assembly/shared/abi.js";
import { buildPacket, get16, locate } from "../helpers/packets.js";

const base = {
  proxy: { address: "198.51.100.1" },
  capacity: { flows: 4096, groups: 16, targets: 64 },
  groups: [
    { protocol: "udp", address: "203.0.113.10", port: 53, targets: [{ address: "192.0.2.11", port: 53 }, { address: "192.0.2.12", port: 53 }] },
    { protocol: "tcp", address: "203.0.113.10", port: 80, targets: [{ address: "192.0.2.11", port: 80 }, { address: "192.0.2.12", port: 80 }] },
  ],
};

function send(dp: DataPlane, proto: "udp" | "tcp", c: number, flags = 0x02): { verdict: Verdict; reason: number; target: string; port: number } {
  const batch = dp.createBatch(1);
  batch.add(buildPacket({ family: 4, proto, src: new Uint8Array([10, 0, 0, c]), dst: new Uint8Array([203, 0, 113, 10]), sport: 5000, dport: proto === "udp" ? 53 : 80, tcpFlags: flags, payload: new Uint8Array(4) }), { time: 1000 });
  dp.process(batch);
  const out = batch.packet(0);
  const L = locate(out);
  return { verdict: batch.verdict(0), reason: batch.reason(0), target: L.dst.join("."), port: get16(out, L.l4) };
}

test("a reload that keeps a flow's target keeps the flow's target and NAT port, and adds and removes what changed", () => {
  const dp = DataPlane.fromConfig(validateConfig(base));
  const before = Array.from({ length: 40 }, (_, c) => send(dp, "udp", c));
  const next = structuredClone(base);
  next.groups[0].targets.push({ address: "192.0.2.13", port: 53 }); // added
  (next.groups[0].targets[0] as { weight?: number }).weight = 3; // re-weighted: keeps its flows
  next.groups.push({ protocol: "udp", address: "203.0.113.11", port: 53, targets: [{ address: "192.0.2.14", port: 53 }] });
  next.groups.splice(1, 1); // the TCP group goes
  const summary = dp.applyConfig(validateConfig(next));
  assert.deepEqual(summary.groupsAdded, ["udp 203.0.113.11:53"]);
  assert.deepEqual(summary.groupsRemoved, ["tcp 203.0.113.10:80"]);
  assert.equal(summary.targetsAdded, 1);
  assert.equal(summary.targetsChanged, 1);
  const after = Array.from({ length: 40 }, (_, c) => send(dp, "udp", c));
  assert.deepEqual(after, before, "every live flow kept its target and NAT port");
  assert.equal(dp.counters().flowsLive, 40);
  assert.equal(send(dp, "tcp", 1).reason, Reason.NotForProxy, "the removed group serves nothing");
  const fresh = Array.from({ length: 200 }, (_, c) => send(dp, "udp", 100 + c).target);
  assert.ok(fresh.includes("192.0.2.13"), "new flows reach the added target");
});

test("a reload that removes a target re-pins its UDP flows and drops its TCP flows as target-down", () => {
  const dp = DataPlane.fromConfig(validateConfig(base));
  const udp = Array.from({ length: 30 }, (_, c) => send(dp, "udp", c));
  const tcp = Array.from({ length: 30 }, (_, c) => send(dp, "tcp", c));
  const next = structuredClone(base);
  next.groups[0].targets.splice(1, 1);
  next.groups[1].targets.splice(1, 1);
  dp.applyConfig(validateConfig(next));
  const on = (flows: typeof udp, target: string): number[] => flows.flatMap((r, c) => (r.target === target ? [c] : []));
  const [udpKept, udpMoved, tcpKept, tcpLost] = [on(udp, "192.0.2.11"), on(udp, "192.0.2.12"), on(tcp, "192.0.2.11"), on(tcp, "192.0.2.12")];
  for (const c of [udpKept, udpMoved, tcpKept, tcpLost]) assert.ok(c.length > 0, "before the reload, UDP and TCP flows on both targets");
  for (const c of udpKept) assert.deepEqual(send(dp, "udp", c), udp[c], "UDP flows to the kept target keep it and their NAT port");
  for (const c of udpMoved) {
    const again = send(dp, "udp", c);
    assert.equal(again.verdict, Verdict.Forward);
    assert.equal(again.target, "192.0.2.11", "UDP flows to the removed target move to the kept one");
  }
  for (const c of tcpKept) {
    const again = send(dp, "tcp", c, 0x10);
    assert.equal(again.verdict, Verdict.Forward);
    assert.equal(again.port, tcp[c].port, "TCP flows to the kept target keep their NAT port");
  }
  for (const c of tcpLost) assert.equal(send(dp, "tcp", c, 0x10).reason, Reason.TargetDown, "TCP flows to the removed target are dropped");
});

test("a reload that changes the proxy's address, the table sizes or their prefaulting is refused and changes nothing", () => {
  const dp = DataPlane.fromConfig(validateConfig(base));
  const r = send(dp, "udp", 1);
  for (const change of [{ proxy: { address: "198.51.100.9" } }, { capacity: { flows: 8192, groups: 16, targets: 64 } }, { capacity: { ...base.capacity, prefault: true } }]) {
    const next = { ...structuredClone(base), ...change, groups: [] };
    assert.throws(() => dp.applyConfig(validateConfig(next)), /cannot change without a restart/);
  }
  assert.deepEqual(send(dp, "udp", 1), r);
  assert.equal(dp.groupKeys().length, 2);
});
