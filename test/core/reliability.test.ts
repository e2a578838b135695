// The data plane under abuse and after failures, short versions of the floods
// `npm run bench:attack` runs live: spoofed SYN floods against a target's NAT
// ports, one source's SYN flood, replies whose binding is gone, packets to
// unused anycast addresses, oversized and padded packets into a tunnel, and
// what a restarted proxy keeps under affinity.

import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { DataPlane, reasonName, type GroupSpec } from "../../src/core/dataplane.js";
import { Reason, Verdict } from "../../assembly/shared/abi.js";
import { buildPacket, locate } from "../helpers/packets.js";
import { PROXY4, TA4, bytesOf, run } from "../helpers/dataplane.js";

const TARGET = "192.0.2.11";
const SYN = 0x02;
const ACK = 0x10;
const SYN_ACK = 0x12;

function plane(settings: { natPorts?: [number, number]; halfOpenPerSource?: number } = {}, group: Partial<GroupSpec> = {}) {
  const dp = DataPlane.create(
    { address: PROXY4, anycastPrefixes: ["203.0.113.0/24"], capacity: { flows: 1 << 14, groups: 8, targets: 16 }, ...settings },
    [{ protocol: "tcp", address: TA4, port: 80, policy: "round-robin", targets: [{ address: TARGET, port: 8080 }], ...group }],
  );
  return { dp, batch: dp.createBatch(512, 512 * 2048) };
}

const client = (i: number): Uint8Array => Uint8Array.of(10, (i >> 16) & 255, (i >> 8) & 255, i & 255);
const toTA = (src: Uint8Array, sport: number, tcpFlags: number): Uint8Array =>
  buildPacket({ family: 4, proto: "tcp", src, dst: bytesOf(TA4), sport, dport: 80, tcpFlags, payload: new Uint8Array(0) });
const fromTarget = (nport: number, tcpFlags: number, target = bytesOf(TARGET)): Uint8Array =>
  buildPacket({ family: 4, proto: "tcp", src: target, dst: bytesOf(PROXY4), sport: 8080, dport: nport, tcpFlags, payload: new Uint8Array(0) });
const natPort = (out: Uint8Array): number => {
  const l = locate(out);
  return (out[l.l4] << 8) | out[l.l4 + 1];
};
const reasons = (rs: { verdict: Verdict; reason: number }[]): Record<string, number> => {
  const m: Record<string, number> = {};
  for (const r of rs) {
    const k = r.verdict === Verdict.Forward ? "forwarded" : reasonName(r.reason);
    m[k] = (m[k] ?? 0) + 1;
  }
  return m;
};

describe("SYN floods", () => {
  test("a spoofed SYN flood that binds every NAT port toward a target does not shut new clients out: the oldest half-open binding is reclaimed (early drop)", () => {
    const { dp, batch } = plane({ natPorts: [20000, 20255] });
    // 20 established connections: SYN, the target's SYN-ACK, the client's ACK
    const est = Array.from({ length: 20 }, (_, i) => client(i));
    const ports = run(dp, batch, est.map((c) => toTA(c, 5000, SYN))).map((r) => natPort(r.out));
    run(dp, batch, ports.map((p) => fromTarget(p, SYN_ACK)));
    assert.ok(run(dp, batch, est.map((c) => toTA(c, 5000, ACK))).every((r) => r.verdict === Verdict.Forward));
    // 2,000 spoofed SYNs (256 ports in all): every one is served, by taking the oldest half-open port
    for (let round = 0; round < 4; round++) {
      const flood = Array.from({ length: 500 }, (_, i) => toTA(client(100_000 + round * 500 + i), 1024 + i, SYN));
      const rs = run(dp, batch, flood, 101, 1000 + round);
      assert.deepEqual(reasons(rs), { forwarded: 500 }, `round ${round}`);
    }
    // a new legitimate client now
    const legit = run(dp, batch, [toTA(client(99_999), 7000, SYN)], 101, 1005);
    assert.equal(legit[0].verdict, Verdict.Forward, reasonName(legit[0].reason));
    // no established binding was taken: each still reaches its own client
    const back = run(dp, batch, ports.map((p) => fromTarget(p, ACK)), 101, 1005);
    back.forEach((r, i) => {
      assert.equal(r.verdict, Verdict.Forward, `established flow ${i}: ${reasonName(r.reason)}`);
      assert.deepEqual([...locate(r.out).dst], [...est[i]]);
    });
  });

  test("without early drop's victims (every port held by an established flow) a new flow is refused as nat-ports-exhausted, never given a held port", () => {
    const { dp, batch } = plane({ natPorts: [20000, 20063] });
    const est = Array.from({ length: 64 }, (_, i) => client(i));
    const ports = run(dp, batch, est.map((c) => toTA(c, 5000, SYN))).map((r) => natPort(r.out));
    assert.equal(new Set(ports).size, 64);
    run(dp, batch, ports.map((p) => fromTarget(p, SYN_ACK)));
    run(dp, batch, est.map((c) => toTA(c, 5000, ACK)));
    const r = run(dp, batch, [toTA(client(5000), 1, SYN)]);
    assert.equal(reasonName(r[0].reason), "nat-ports-exhausted");
  });

  test("one source's SYN flood is capped at halfOpenPerSource half-open flows (half-open-limit); established flows free its budget", () => {
    const { dp, batch } = plane({ halfOpenPerSource: 100 });
    const attacker = client(7);
    const rs = run(dp, batch, Array.from({ length: 150 }, (_, i) => toTA(attacker, 1000 + i, SYN)));
    assert.deepEqual(reasons(rs), { forwarded: 100, "half-open-limit": 50 });
    assert.equal(run(dp, batch, [toTA(client(8), 1, SYN)])[0].verdict, Verdict.Forward, "another source is not limited");
    // one of them completes its handshake: one more SYN is let through
    const port = natPort(rs[0].out);
    run(dp, batch, [fromTarget(port, SYN_ACK)]);
    run(dp, batch, [toTA(attacker, 1000, ACK)]);
    assert.deepEqual(reasons(run(dp, batch, [toTA(attacker, 3000, SYN), toTA(attacker, 3001, SYN)])), { forwarded: 1, "half-open-limit": 1 });
  });
});

describe("drops with reasons of their own", () => {
  test("a reply to the proxy's address whose binding is gone (expired, evicted, or lost in a restart) is no-binding, not not-for-proxy", () => {
    const { dp, batch } = plane();
    const r = run(dp, batch, [fromTarget(31337, ACK)]);
    assert.equal(reasonName(r[0].reason), "no-binding");
    assert.equal(dp.counters().drops["no-binding"], 1);
  });

  test("a packet to an anycast-prefix address with no group goes to the host to resolve, or, with nothing to resolve it, is dropped as no-group", () => {
    const { dp, batch } = plane();
    const p = buildPacket({ family: 4, proto: "udp", src: client(1), dst: bytesOf("203.0.113.99"), sport: 1, dport: 53, payload: new Uint8Array(4) });
    assert.equal(run(dp, batch, [p])[0].verdict, Verdict.ToHost);
    dp.setResolveUnknown(false);
    const r = run(dp, batch, [p]);
    assert.equal(r[0].verdict, Verdict.Drop);
    assert.equal(reasonName(r[0].reason), "no-group");
  });
});

describe("tunnels", () => {
  const aware = (tunnelMtu = 65535) =>
    DataPlane.create({ address: PROXY4, tunnelMtu, capacity: { flows: 1024, groups: 4, targets: 4 } }, [
      { protocol: "udp", address: TA4, port: 53, targets: [{ address: TARGET, port: 53, aware: true }] },
    ]);
  const udp = (payload: number, df: boolean) =>
    buildPacket({ family: 4, proto: "udp", src: client(1), dst: bytesOf(TA4), sport: 999, dport: 53, payload: new Uint8Array(payload), df });

  test("an IPv4 packet over 65,515 bytes without DF is dropped as tunnel-overflow (its outer length would wrap); with DF it gets fragmentation-needed", () => {
    const dp = aware();
    const batch = dp.createBatch(4, 4 * 70_000);
    const big = udp(65_535 - 28, false);
    assert.equal(big.length, 65_535);
    const r = run(dp, batch, [big]);
    assert.equal(reasonName(r[0].reason), "tunnel-overflow");
    const df = run(dp, batch, [udp(65_535 - 28, true)]);
    assert.equal(df[0].verdict, Verdict.Forward, "the ICMP error goes back");
    assert.equal(dp.counters().drops["packet-too-big"], 1);
    const fits = run(dp, batch, [udp(65_515 - 28, false)]);
    assert.equal(fits[0].verdict, Verdict.Forward);
    assert.equal((fits[0].out[2] << 8) | fits[0].out[3], 65_535, "the outer length is exact at the limit");
  });

  test("bytes past the IP total length are not carried into the tunnel", () => {
    const dp = aware(1500);
    const batch = dp.createBatch(4, 4 * 4096);
    const p = udp(100, false);
    const padded = new Uint8Array(p.length + 17);
    padded.set(p);
    padded.fill(0xee, p.length);
    const r = run(dp, batch, [padded]);
    assert.equal(r[0].verdict, Verdict.Forward);
    assert.equal(r[0].out.length, 20 + p.length);
    assert.equal((r[0].out[2] << 8) | r[0].out[3], 20 + p.length);
    assert.deepEqual(r[0].out.subarray(20), p);
  });
});

describe("restarts", () => {
  test("under affinity, a restarted proxy re-derives an established connection from the client's next segment: the same target and the same NAT port", () => {
    const spec: Partial<GroupSpec> = { policy: "affinity", targets: [{ address: TARGET, port: 8080 }, { address: "192.0.2.12", port: 8080 }, { address: "192.0.2.13", port: 8080 }] };
    const before = plane({}, spec);
    const c = client(42);
    const syn = run(before.dp, before.batch, [toTA(c, 40000, SYN)])[0];
    const after = plane({}, spec); // a new process: no flows
    // the target's packet comes first: the new proxy cannot know the client from T:t -> P:x
    const target = locate(syn.out).dst.slice();
    const lost = run(after.dp, after.batch, [fromTarget(natPort(syn.out), ACK, target)])[0];
    assert.equal(reasonName(lost.reason), "no-binding");
    const again = run(after.dp, after.batch, [toTA(c, 40000, ACK)])[0];
    assert.equal(again.verdict, Verdict.Forward);
    assert.deepEqual([...locate(again.out).dst], [...locate(syn.out).dst], "same target");
    assert.equal(natPort(again.out), natPort(syn.out), "same NAT port");
    const reply = run(after.dp, after.batch, [fromTarget(natPort(syn.out), ACK, target)])[0];
    assert.equal(reply.verdict, Verdict.Forward, `the target's packets flow again: ${reasonName(reply.reason)}`);
  });
});
