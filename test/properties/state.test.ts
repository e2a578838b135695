// Flow state over time and under pressure: timeouts per protocol and TCP
// state, NAT port reuse only after expiry, and a full table that never
// corrupts live flows.

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { DataPlane } from "../../src/core/dataplane.js";
import { Reason, Verdict } from "../../assembly/shared/abi.js";
import { buildPacket, get16, locate } from "../helpers/packets.js";
import { PROXY4, TA4, bytesOf } from "../helpers/dataplane.js";

const runs = Number(process.env.PIAS_FUZZ_RUNS ?? 100);
const TIMEOUTS = { tcpEstablished: 600, tcpTransitory: 60, udp: 120, icmp: 30 };

function plane(flows: number, natPorts: [number, number] = [1024, 65535]): DataPlane {
  return DataPlane.create({ address: PROXY4, natPorts, timeouts: TIMEOUTS, capacity: { flows, groups: 4, targets: 8 } }, [
    { protocol: "udp", address: TA4, port: 53, targets: [{ address: "192.0.2.11", port: 53 }] },
    { protocol: "tcp", address: TA4, port: 80, targets: [{ address: "192.0.2.11", port: 80 }] },
    { protocol: "icmp", address: TA4, targets: [{ address: "192.0.2.11" }] },
  ]);
}

const client = (i: number): Uint8Array => new Uint8Array([10, 9, (i >> 8) & 255, i & 255]);

const batches = new WeakMap<DataPlane, ReturnType<DataPlane["createBatch"]>>();

function send(dp: DataPlane, proto: "udp" | "tcp" | "icmp", c: number, time: number, flags = 0x02, sport = 4000): { verdict: Verdict; reason: number; natPort: number } {
  let batch = batches.get(dp);
  if (!batch) batches.set(dp, (batch = dp.createBatch(1)));
  batch.clear();
  batch.add(buildPacket({ family: 4, proto, src: client(c), dst: bytesOf(TA4), sport, dport: proto === "udp" ? 53 : 80, tcpFlags: flags, payload: new Uint8Array(8) }), { time });
  dp.process(batch);
  const out = batch.packet(0);
  const L = locate(out);
  return { verdict: batch.verdict(0), reason: batch.reason(0), natPort: get16(out, L.l4 + (proto === "icmp" ? 4 : 0)) };
}

test("an idle flow is gone after its protocol's timeout and not before", () => {
  const cases: ["udp" | "tcp" | "icmp", number, number][] = [
    ["udp", 0x02, TIMEOUTS.udp],
    ["icmp", 0x02, TIMEOUTS.icmp],
    ["tcp", 0x02, TIMEOUTS.tcpTransitory], // only a SYN seen: transitory
  ];
  for (const [proto, flags, timeout] of cases) {
    const dp = plane(64);
    send(dp, proto, 1, 1000, flags);
    assert.equal(dp.counters().flowsLive, 1);
    assert.equal(dp.expireIdle(1000 + timeout), 0, `${proto}: still live at its timeout`);
    assert.equal(dp.expireIdle(1000 + timeout + 1), 1, `${proto}: gone one second later`);
  }
});

test("an established TCP flow lives for the established timeout; after FIN both ways or RST, for the transitory one", () => {
  const dp = plane(64);
  send(dp, "tcp", 1, 1000, 0x02); // SYN
  send(dp, "tcp", 1, 1001, 0x10); // ACK: established
  assert.equal(dp.expireIdle(1001 + TIMEOUTS.tcpTransitory + 1), 0);
  assert.equal(dp.expireIdle(1001 + TIMEOUTS.tcpEstablished + 1), 1);
  send(dp, "tcp", 2, 5000, 0x02);
  send(dp, "tcp", 2, 5001, 0x10);
  send(dp, "tcp", 2, 5002, 0x04); // RST
  assert.equal(dp.expireIdle(5002 + TIMEOUTS.tcpTransitory + 1), 1);
});

test("a NAT port returns to the pool only after its flow expired", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: TIMEOUTS.udp }), fc.integer({ min: 1, max: 200 }), (early, late) => {
      const dp = plane(64, [40000, 40000]); // one port toward the target
      const first = send(dp, "udp", 1, 1000);
      assert.equal(first.verdict, Verdict.Forward);
      assert.equal(first.natPort, 40000);
      // while the first flow is live, a second client cannot get the only port
      const blocked = send(dp, "udp", 2, 1000 + early);
      assert.equal(blocked.verdict, Verdict.Drop);
      assert.equal(blocked.reason, Reason.NatPortsExhausted);
      // the first flow was refreshed at 1000 only; past its timeout the port is free again
      const second = send(dp, "udp", 2, 1000 + TIMEOUTS.udp + late);
      assert.equal(second.verdict, Verdict.Forward);
      assert.equal(second.natPort, 40000);
    }),
    { numRuns: runs },
  );
});

test("a port held by a flow gone idle is not handed out while another port tried is free (the idle flow holds it until it is freed)", () => {
  for (let b = 2; b < 200; b++) {
    // client b's first candidate on an empty table
    const alone = send(plane(64, [40000, 40001]), "udp", b, 1000).natPort;
    const dp = plane(64, [40000, 40001]);
    const held = send(dp, "udp", 1, 1000).natPort;
    if (alone !== held) continue; // client b would try client 1's port first
    // client 1 is idle past its timeout, not yet freed (the sweep runs after the batch): b takes the free port
    const late = 1000 + TIMEOUTS.udp + 1;
    const r = send(dp, "udp", b, late);
    assert.equal(r.verdict, Verdict.Forward);
    assert.notEqual(r.natPort, held, `client ${b}: the idle flow's port was handed out while the other was free`);
    return;
  }
  assert.fail("no client tries client 1's port first");
});

test("where every packet opens a flow and flows expire, the sweep frees expired flows as fast as new ones come: the table never fills", () => {
  const dp = plane(1024);
  const batch = dp.createBatch(128);
  let c = 0;
  for (let k = 0; k < 40; k++) {
    // 128 new flows a batch, 61 s apart: a batch's flows are stale (120 s) two batches later
    batch.clear();
    for (let i = 0; i < 128; i++, c++) {
      batch.add(buildPacket({ family: 4, proto: "udp", src: client(c), dst: bytesOf(TA4), sport: 4000, dport: 53, payload: new Uint8Array(8) }), { time: 1000 + k * 61 });
    }
    dp.process(batch);
    for (let i = 0; i < 128; i++) assert.equal(batch.verdict(i), Verdict.Forward);
    const live = dp.counters().flowsLive;
    assert.ok(live <= 4 * 128, `batch ${k}: ${live} flows live, where at most the last three batches' and some not yet swept should be`);
  }
  assert.equal(dp.counters().flowsExpired, 40 * 128 - dp.counters().flowsLive);
});

test("a full flow table drops new flows as flow-table-full and never corrupts live flows", () => {
  fc.assert(
    fc.property(fc.integer({ min: 4, max: 40 }), fc.integer({ min: 1, max: 60 }), (capacity, extra) => {
      const dp = plane(capacity);
      // fill the table with established TCP flows (not transitory: they cannot be evicted)
      const bindings = new Map<number, number>();
      for (let c = 0; c < capacity; c++) {
        send(dp, "tcp", c, 1000, 0x02);
        const r = send(dp, "tcp", c, 1000, 0x10);
        assert.equal(r.verdict, Verdict.Forward);
        bindings.set(c, r.natPort);
      }
      for (let c = capacity; c < capacity + extra; c++) {
        const r = send(dp, "udp", c, 1001);
        assert.equal(r.verdict, Verdict.Drop);
        assert.equal(r.reason, Reason.FlowTableFull);
      }
      // every live flow still maps to its own binding
      for (const [c, port] of bindings) {
        const r = send(dp, "tcp", c, 1002, 0x10);
        assert.equal(r.verdict, Verdict.Forward);
        assert.equal(r.natPort, port);
      }
      assert.equal(dp.counters().drops["flow-table-full"], extra);
    }),
    { numRuns: Math.min(runs, 50) },
  );
});

test("when the table is full, an expired flow makes room first, then a transitory one", () => {
  const dp = plane(4);
  for (let c = 0; c < 4; c++) {
    send(dp, "tcp", c, 1000, 0x02);
    send(dp, "tcp", c, 1000, 0x10); // established
  }
  send(dp, "tcp", 0, 1500, 0x10); // keep client 0 busy; the others idle past 600 s by time 1700
  const r = send(dp, "udp", 9, 1700);
  assert.equal(r.verdict, Verdict.Forward, "an expired flow made room");
  assert.equal(send(dp, "tcp", 0, 1701, 0x10).verdict, Verdict.Forward, "the busy flow lives on");
  const dp2 = plane(2);
  send(dp2, "tcp", 0, 1000, 0x02); // transitory (SYN only)
  send(dp2, "tcp", 1, 1000, 0x02);
  send(dp2, "tcp", 1, 1000, 0x10); // established
  const r2 = send(dp2, "udp", 7, 1001);
  assert.equal(r2.verdict, Verdict.Forward, "the transitory flow was evicted for it");
  assert.equal(send(dp2, "tcp", 1, 1002, 0x10).verdict, Verdict.Forward, "the established flow lives on");
});
