// Target selection policies, observed through the packets the core forwards.

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { DataPlane, type GroupSpec, type TargetSpec } from "../../src/core/dataplane.js";
import { Verdict } from "../../assembly/shared/abi.js";
import { buildPacket, locate } from "../helpers/packets.js";
import { PROXY4, TA4, bytesOf } from "../helpers/dataplane.js";

// each run pushes 10-30k packets through a data plane: long fuzzing gets at most 500 runs here
const runs = Math.min(Number(process.env.PIAS_FUZZ_RUNS ?? 20), 500);

function plane(policy: GroupSpec["policy"], targets: TargetSpec[], affinity: "client" | "flow" = "client"): { dp: DataPlane; key: string } {
  const dp = new DataPlane({ address: PROXY4, capacity: { flows: 1 << 18, groups: 4, targets: 4096 }, randomSeed: 7 });
  const key = dp.addGroup({ protocol: "udp", address: TA4, port: 53, policy, affinity, targets });
  return { dp, key };
}

const targetList = (n: number, weight = (_: number) => 1): TargetSpec[] =>
  Array.from({ length: n }, (_, i) => ({ address: `192.0.${2 + (i >> 8)}.${i & 255}`, port: 5353, weight: weight(i) }));

function client(i: number): Uint8Array {
  return new Uint8Array([10, (i >> 16) & 255, (i >> 8) & 255, i & 255]);
}

/** The target each client's new flow goes to (sport distinguishes rounds so every flow is new). */
function assign(dp: DataPlane, clients: number, sport: number): string[] {
  const batch = dp.createBatch(512, 512 * 256);
  const out: string[] = [];
  for (let start = 0; start < clients; start += 512) {
    batch.clear();
    const n = Math.min(512, clients - start);
    for (let i = 0; i < n; i++) {
      const p = buildPacket({ family: 4, proto: "udp", src: client(start + i), dst: bytesOf(TA4), sport, dport: 53, payload: new Uint8Array(4) });
      batch.add(p, { time: 1000 });
    }
    dp.process(batch);
    for (let i = 0; i < n; i++) {
      assert.equal(batch.verdict(i), Verdict.Forward, `reason ${batch.reason(i)}`);
      out.push(locate(batch.packet(i)).dst.join("."));
    }
  }
  return out;
}

function counts(xs: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const x of xs) m.set(x, (m.get(x) ?? 0) + 1);
  return m;
}

function disruption(n: number, pick: number): number {
  const targets = targetList(n);
  const { dp, key } = plane("affinity", targets);
  const before = assign(dp, 10000, 1000);
  const gone = targets[pick % n];
  dp.removeTarget(key, `${gone.address}:${gone.port}`);
  const after = assign(dp, 10000, 1001);
  let moved = 0;
  for (let i = 0; i < before.length; i++) {
    if (before[i] !== after[i]) moved++;
    if (before[i] === gone.address) assert.notEqual(after[i], gone.address);
  }
  return moved / before.length;
}

test("affinity: removing 1 of N targets (N <= 6) moves at most 1.2/N of the clients", () => {
  fc.assert(
    fc.property(fc.integer({ min: 2, max: 6 }), fc.nat(), (n, pick) => {
      const moved = disruption(n, pick);
      assert.ok(moved <= 1.2 / n, `moved ${moved} with n=${n}`);
    }),
    { numRuns: runs },
  );
});

// Maglev tables move more than 1/N for larger N (measured worst case 1.26/N
// at N=8, 1.27/N at N=11, 2.29/N at
// N=60 with M = 101 x member slots): small groups need rendezvous hashing.
test("affinity: removing 1 of N targets (N up to 40) moves at most 1.2/N of the clients", { todo: "rendezvous hashing for groups of up to 64 targets" }, () => {
  fc.assert(
    fc.property(fc.integer({ min: 7, max: 40 }), fc.nat(), (n, pick) => {
      const moved = disruption(n, pick);
      assert.ok(moved <= 1.2 / n, `moved ${moved} with n=${n}`);
    }),
    { numRuns: runs },
  );
});

test("affinity on the 5-tuple spreads one client's flows over the targets", () => {
  const { dp } = plane("affinity", targetList(4), "flow");
  const seen = new Set<string>();
  for (let sport = 1000; sport < 1064; sport++) for (const t of assign(dp, 1, sport)) seen.add(t);
  assert.equal(seen.size, 4);
});

test("affinity respects weights: table shares follow the weights within 10%", () => {
  const { dp } = plane("affinity", targetList(3, (i) => i + 1));
  const c = counts(assign(dp, 30000, 1000));
  const total = 30000;
  [1, 2, 3].forEach((w, i) => {
    const share = (c.get(`192.0.2.${i}`) ?? 0) / total;
    assert.ok(Math.abs(share - w / 6) < 0.1 * (w / 6), `target ${i}: share ${share}, expected ${w / 6}`);
  });
});

test("weighted round-robin gives each target exactly its weight's share, in turn", () => {
  const { dp } = plane("round-robin", targetList(3, (i) => i + 1));
  const seq = assign(dp, 600, 1000);
  const c = counts(seq);
  assert.deepEqual([...c.entries()].sort(), [["192.0.2.0", 100], ["192.0.2.1", 200], ["192.0.2.2", 300]]);
  assert.deepEqual(seq.slice(0, 6), ["192.0.2.0", "192.0.2.1", "192.0.2.2", "192.0.2.1", "192.0.2.2", "192.0.2.2"]);
});

test("random spreads new flows evenly within statistical bounds", () => {
  const { dp } = plane("random", targetList(5));
  const c = counts(assign(dp, 20000, 1000));
  // 5 sigma of a binomial(20000, 0.2): 283
  for (const n of c.values()) assert.ok(Math.abs(n - 4000) < 283, `count ${n}`);
});

test("least-load keeps active flows per unit of weight level", () => {
  const { dp } = plane("least-load", targetList(4, (i) => (i === 0 ? 2 : 1)));
  const c = counts(assign(dp, 5000, 1000));
  assert.equal(c.get("192.0.2.0"), 2000);
  for (const t of ["192.0.2.1", "192.0.2.2", "192.0.2.3"]) assert.equal(c.get(t), 1000);
});

test("proximity sends every flow to the nearest targets", () => {
  const targets = targetList(4).map((t, i) => ({ ...t, distance: [30, 10, 10, 20][i] }));
  const { dp } = plane("proximity", targets);
  const c = counts(assign(dp, 2000, 1000));
  assert.deepEqual([...c.keys()].sort(), ["192.0.2.1", "192.0.2.2"]);
});

test("a member sending to its own group is never given itself, under every policy", () => {
  for (const policy of ["affinity", "round-robin", "random", "least-load", "proximity"] as const) {
    const targets: TargetSpec[] = Array.from({ length: 3 }, (_, i) => ({ address: `10.0.0.${i}`, port: 5353 }));
    const { dp } = plane(policy, targets);
    const got = assign(dp, 3, 1000);
    got.forEach((t, i) => assert.notEqual(t, `10.0.0.${i}`, `${policy}: client 10.0.0.${i} got itself`));
  }
});

test("a down target gets no new flows at once and an up target gets them again", () => {
  const targets = targetList(3);
  const { dp, key } = plane("affinity", targets);
  dp.setTargetUp(key, "192.0.2.1:5353", false);
  assert.ok(!assign(dp, 3000, 1000).includes("192.0.2.1"));
  dp.setTargetUp(key, "192.0.2.1:5353", true);
  assert.ok(assign(dp, 3000, 1001).includes("192.0.2.1"));
});
