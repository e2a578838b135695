// Target selection policies, observed through the packets the core forwards.

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { DataPlane, type TargetSpec } from "../../src/core/dataplane.js";
import { Verdict } from "../../assembly/shared/abi.js";
import { buildPacket, locate } from "../helpers/packets.js";
import { PROXY4, TA4, bytesOf } from "../helpers/dataplane.js";
import { assign, client, counts, plane, removal, targetList } from "../helpers/selection.js";
import { ReferenceModel } from "../../src/reference/model.js";

// each run pushes 10-30k packets through a data plane: long fuzzing gets at most 500 runs here
const runs = Math.min(Number(process.env.PIAS_FUZZ_RUNS ?? 20), 500);

// Up to 8 member slots affinity is rendezvous hashing itself; up to 128 a
// table of M = 101 x slots entries, each owned by that entry's rendezvous
// winner and updated in place; beyond, a ring read through such a table:
// all move exactly the removed target's clients.
const rendezvousSizes = fc.oneof(fc.integer({ min: 2, max: 8 }), fc.integer({ min: 9, max: 128 }), fc.integer({ min: 129, max: 300 }));

test("affinity (groups of any kind of table): removing 1 of N targets moves exactly the clients it had and no others", () => {
  fc.assert(
    fc.property(rendezvousSizes, fc.nat(), (n, pick) => {
      const { before, after, gone } = removal(n, pick, 5000);
      before.forEach((t, i) => {
        if (t === gone) assert.notEqual(after[i], gone, `client ${i} still on the removed target`);
        else assert.equal(after[i], t, `client ${i} moved from ${t} to ${after[i]}`);
      });
    }),
    { numRuns: runs },
  );
});

test("affinity on rendezvous and rendezvous-table groups (1 to 128 targets, equal or mixed weights) gives every client the reference model's target", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 128 }), fc.boolean(), fc.nat(), (n, mixed, seed) => {
      const targets = targetList(n, (i) => (mixed ? 1 + ((i * 7 + seed) % 3) : 1));
      const { dp } = plane("affinity", targets);
      const model = new ReferenceModel({ address: PROXY4, capacity: { flows: 1 << 18, groups: 4, targets: 4096 } });
      model.addGroup({ protocol: "udp", address: TA4, port: 53, policy: "affinity", targets });
      const clients = 600;
      const sport = 1000 + (seed % 1000);
      const got = assign(dp, clients, sport);
      const packets = Array.from({ length: clients }, (_, i) => ({
        data: buildPacket({ family: 4, proto: "udp", src: client(i), dst: bytesOf(TA4), sport, dport: 53, payload: new Uint8Array(4) }),
        time: 1000,
      }));
      const want = model.process(packets).map((r) => locate(r!.data).dst.join("."));
      assert.deepEqual(got, want);
    }),
    { numRuns: runs * 2 },
  );
});

test("affinity on rendezvous groups: removing 1 of N targets (N up to 8) moves at most 1.2/N of the clients", () => {
  fc.assert(
    fc.property(fc.integer({ min: 2, max: 8 }), fc.nat(), (n, pick) => {
      // 40000 clients: 1.2/N is at least 5 standard deviations above the expected 1/N
      const { before, after } = removal(n, pick, 40000);
      const moved = before.filter((t, i) => t !== after[i]).length / before.length;
      assert.ok(moved <= 1.2 / n, `moved ${moved} with n=${n}`);
    }),
    { numRuns: Math.min(runs, 10) },
  );
});

// A rendezvous or ring table has about 101 entries per target, so a target
// owns 1/N of it give or take 10% (one standard deviation): removing one moves
// its share, at most 1.5/N (5 standard deviations, with the clients' own spread).
test("affinity on table groups: removing 1 of N targets (N 9 to 300) moves at most 1.5/N of the clients", () => {
  fc.assert(
    fc.property(fc.integer({ min: 9, max: 300 }), fc.nat(), (n, pick) => {
      const { before, after } = removal(n, pick, 400 * n);
      const moved = before.filter((t, i) => t !== after[i]).length / before.length;
      assert.ok(moved <= 1.5 / n, `moved ${moved} with n=${n}`);
    }),
    { numRuns: Math.min(runs, 5) },
  );
});

test("affinity on rendezvous-table and ring-table groups: a target coming back up takes back exactly its clients", () => {
  for (const n of [100, 200]) {
    const targets = targetList(n);
    const { dp, key } = plane("affinity", targets);
    const before = assign(dp, 20000, 1000);
    dp.setTargetUp(key, "192.0.2.17:5353", false);
    const down = assign(dp, 20000, 1001, 1000 + 301);
    dp.setTargetUp(key, "192.0.2.17:5353", true);
    const up = assign(dp, 20000, 1002, 1000 + 602);
    assert.deepEqual(up, before);
    before.forEach((t, i) => assert.equal(down[i] !== t, t === "192.0.2.17", `client ${i}: ${t} -> ${down[i]}`));
  }
});

// Groups of more than 128 member slots read a consistent-hashing ring through
// the same kind of table (101 points per target): built in O(points log),
// where a rendezvous table costs entries x targets, and as exact.
test("affinity on ring-table groups (over 128 member slots): removing 1 of N targets moves exactly its clients, at most 1.5/N of them", () => {
  for (const [n, pick] of [[600, 3], [1100, 742]]) {
    const { before, after, gone } = removal(n, pick, 100 * n);
    before.forEach((t, i) => {
      if (t === gone) assert.notEqual(after[i], gone, `client ${i} still on the removed target`);
      else assert.equal(after[i], t, `client ${i} moved from ${t} to ${after[i]}`);
    });
    const moved = before.filter((t, i) => t !== after[i]).length / before.length;
    assert.ok(moved <= 1.5 / n, `moved ${moved} with n=${n}`);
  }
});

// A ring table is updated in place: a join or a leave costs the entries it
// moves, not a rebuild (ring.ts). The result must be exactly the table a
// build from scratch gives for the same membership, whatever the history.
test("affinity on ring-table groups: after any history of joins, leaves (batched or not), weight changes, downs and table growth, the table is exactly the one built at once from the final membership", () => {
  const endpoint = (i: number): TargetSpec => ({ address: `192.0.${2 + (i >> 8)}.${i & 255}`, port: 5353 });
  const op = fc.oneof(
    fc.record({ kind: fc.constant("batch" as const), remove: fc.array(fc.nat(), { maxLength: 8 }), add: fc.integer({ min: 0, max: 30 }) }),
    fc.record({ kind: fc.constant("weight" as const), pick: fc.nat(), weight: fc.integer({ min: 1, max: 4 }) }),
    fc.record({ kind: fc.constant("down" as const), pick: fc.nat() }),
  );
  fc.assert(
    // from 470 targets, some histories cross 512 (the table doubles and is filled from the kept ring)
    fc.property(fc.integer({ min: 470, max: 640 }), fc.array(op, { minLength: 1, maxLength: 12 }), (n, ops) => {
      let next = 0;
      const live = new Map<number, { weight: number; up: boolean }>();
      const start = Array.from({ length: n }, () => next++);
      for (const i of start) live.set(i, { weight: 1, up: true });
      const { dp, key } = plane("affinity", start.map(endpoint));
      const id = (i: number) => `${endpoint(i).address}:5353`;
      for (const o of ops) {
        const ids = [...live.keys()];
        if (o.kind === "batch") {
          const gone = [...new Set(o.remove.map((r) => ids[r % ids.length]))].slice(0, Math.max(0, live.size - 450));
          const added = Array.from({ length: o.add }, () => next++);
          assert.deepEqual(dp.updateTargets(key, gone.map(id), added.map(endpoint)), added.map(() => null));
          for (const g of gone) live.delete(g);
          for (const a of added) live.set(a, { weight: 1, up: true });
        } else if (o.kind === "weight") {
          const t = ids[o.pick % ids.length];
          dp.setTargetWeight(key, id(t), o.weight);
          live.get(t)!.weight = o.weight;
        } else {
          const t = ids[o.pick % ids.length];
          const s = live.get(t)!;
          s.up = !s.up;
          dp.setTargetUp(key, id(t), s.up);
        }
      }
      const usable = [...live].filter(([, s]) => s.up);
      fc.pre(usable.length > 512); // the same table size (1024 member slots) in both
      const fresh = plane("affinity", usable.map(([i, s]) => ({ ...endpoint(i), weight: s.weight })));
      assert.equal(dp.tableDigest(key), fresh.dp.tableDigest(fresh.key));
    }),
    { numRuns: Math.max(runs, 30) },
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

test("scoping: clients in a scoped prefix only reach targets with its label, by longest prefix, under every policy", () => {
  for (const policy of ["affinity", "round-robin", "random", "least-load", "proximity"] as const) {
    const targets: TargetSpec[] = [
      { address: "192.0.2.1", port: 53, label: "campus" },
      { address: "192.0.2.2", port: 53, label: "campus" },
      { address: "192.0.2.3", port: 53, label: "lab" },
      { address: "192.0.2.4", port: 53 },
    ];
    const dp = new DataPlane({ address: PROXY4, capacity: { flows: 1 << 16, groups: 4, targets: 64 } });
    dp.addGroup({
      protocol: "udp", address: TA4, port: 53, policy, targets,
      scopes: [{ prefix: "10.1.0.0/16", label: "campus" }, { prefix: "10.1.2.0/24", label: "lab" }],
    });
    const batch = dp.createBatch(256, 256 * 256);
    const send = (a: number, b: number, c: number, sport: number): string => {
      batch.clear();
      batch.add(buildPacket({ family: 4, proto: "udp", src: new Uint8Array([10, a, b, c]), dst: bytesOf(TA4), sport, dport: 53, payload: new Uint8Array(4) }), { time: 1000 });
      dp.process(batch);
      assert.equal(batch.verdict(0), Verdict.Forward, `${policy}: reason ${batch.reason(0)}`);
      return locate(batch.packet(0)).dst.join(".");
    };
    const seen = { campus: new Set<string>(), lab: new Set<string>(), other: new Set<string>() };
    for (let i = 0; i < 60; i++) seen.campus.add(send(1, 7, i, 2000 + i));
    for (let i = 0; i < 60; i++) seen.lab.add(send(1, 2, i, 3000 + i));
    for (let i = 0; i < 60; i++) seen.other.add(send(2, 0, i, 4000 + i));
    for (const t of seen.campus) assert.ok(["192.0.2.1", "192.0.2.2"].includes(t), `${policy}: campus client got ${t}`);
    assert.deepEqual([...seen.lab], ["192.0.2.3"], `${policy}: the longer prefix wins`);
    if (policy !== "proximity") assert.ok(seen.other.size > 1, `${policy}: unscoped clients reach every target`);
  }
});

test("scoping: a scope whose label no usable target has leaves its clients without a target (no-target)", () => {
  const dp = new DataPlane({ address: PROXY4, capacity: { flows: 1024, groups: 4, targets: 64 } });
  const key = dp.addGroup({ protocol: "udp", address: TA4, port: 53, targets: [{ address: "192.0.2.1", port: 53, label: "campus" }, { address: "192.0.2.2", port: 53 }] });
  dp.setScopes(key, [{ prefix: "10.1.0.0/16", label: "campus" }]);
  dp.setTargetUp(key, "192.0.2.1:53", false);
  const batch = dp.createBatch(4);
  batch.add(buildPacket({ family: 4, proto: "udp", src: new Uint8Array([10, 1, 0, 1]), dst: bytesOf(TA4), sport: 1, dport: 53, payload: new Uint8Array(4) }), { time: 1000 });
  dp.process(batch);
  assert.equal(batch.verdict(0), Verdict.Drop);
  assert.equal(dp.counters().drops["no-target"], 1);
});
