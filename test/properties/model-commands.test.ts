// Model-based test (fast-check commands): random sequences of client packets,
// target replies, time advances, health changes, target additions and
// removals, weight and policy changes. After every step the Wasm data plane
// and the plain TypeScript reference model agree on every verdict, every
// output byte, the counters and the per-target statistics.

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { AuxFlag, Verdict } from "../../assembly/shared/abi.js";
import { DataPlane, type GroupSpec } from "../../src/core/dataplane.js";
import { ReferenceModel } from "../../src/reference/model.js";
import type { PacketBatch } from "../../src/core/batch.js";
import { buildPacket, locate, type Proto } from "../helpers/packets.js";
import { PROXY4, PROXY6, TA4, TA6, bytesOf } from "../helpers/dataplane.js";

const runs = Number(process.env.PIAS_FUZZ_RUNS ?? 100);

const POLICIES = ["affinity", "round-robin", "random", "least-load", "proximity"] as const;
const TARGETS = { 4: ["192.0.2.11", "192.0.2.12", "192.0.2.13", "192.0.2.14"], 6: ["2001:db8:b::11", "2001:db8:b::12", "2001:db8:b::13", "2001:db8:b::14"] };
const CLIENTS = { 4: ["10.0.0.1", "10.0.0.2", "10.1.0.3", "192.0.2.12"], 6: ["2001:db8:c::1", "2001:db8:c::2", "2001:db8:c::3", "2001:db8:b::12"] };

interface GroupDef {
  key: string;
  family: 4 | 6;
  proto: Proto;
}

const GROUPS: (GroupDef & { spec: GroupSpec })[] = ([[4, "tcp"], [4, "udp"], [4, "icmp"], [6, "tcp"], [6, "udp"]] as const).map(([family, proto], i) => {
  const spec: GroupSpec = {
    protocol: proto,
    address: family === 4 ? TA4 : TA6,
    port: proto === "tcp" ? 80 : 0, // TCP groups serve port 80 only, the others every port
    policy: POLICIES[i % POLICIES.length],
    targets: TARGETS[family].slice(0, 3).map((address, j) => ({ address, port: proto === "icmp" ? 0 : 8080, weight: j + 1, aware: j === 2, distance: j })),
  };
  return { key: "", family, proto, spec };
});

interface Sys {
  dp: DataPlane;
  ref: ReferenceModel;
  batch: PacketBatch;
  now: number;
  /** Packets the proxy NATed to a target: their replies come back later. */
  toTargets: Uint8Array[];
  keys: string[];
}

function compare(sys: Sys, packets: Uint8Array[]): void {
  const { dp, ref, batch } = sys;
  batch.clear();
  for (const p of packets) assert.ok(batch.add(p, { time: sys.now }));
  dp.process(batch);
  const model = ref.process(packets.map((data) => ({ data, time: sys.now })));
  packets.forEach((_, i) => {
    const m = model[i]!;
    const got = { verdict: batch.verdict(i), reason: batch.reason(i), aux: batch.aux(i), data: [...batch.packet(i)] };
    assert.deepEqual(got, { verdict: m.verdict, reason: m.reason, aux: m.aux, data: [...m.data] }, `packet ${i}`);
    if (got.verdict === Verdict.Forward && got.aux & AuxFlag.ToTarget && !(got.aux & (AuxFlag.Encapsulated | AuxFlag.IcmpError))) {
      sys.toTargets.push(batch.packet(i).slice());
    }
  });
  checkState(sys);
}

function checkState(sys: Sys): void {
  assert.deepEqual(sys.dp.counters(), sys.ref.counters());
  assert.deepEqual(sys.dp.targetStats(), sys.ref.targetStats());
}

/** Both throw or neither does; then the state still agrees. */
function both(sys: Sys, f: (x: DataPlane | ReferenceModel) => void): void {
  let a: unknown, b: unknown;
  try { f(sys.dp); } catch (e) { a = e; }
  try { f(sys.ref); } catch (e) { b = e; }
  assert.equal(a === undefined, b === undefined, `core ${String(a)} / model ${String(b)}`);
  checkState(sys);
}

class ClientPackets implements fc.Command<object, Sys> {
  constructor(readonly sends: { group: number; client: number; sport: number; syn: boolean; payload: number }[]) {}
  check(): boolean { return true; }
  run(_: object, sys: Sys): void {
    compare(sys, this.sends.map((s) => {
      const g = GROUPS[s.group];
      return buildPacket({
        family: g.family, proto: g.proto, src: bytesOf(CLIENTS[g.family][s.client]), dst: bytesOf(g.family === 4 ? TA4 : TA6),
        sport: s.sport, dport: 80, tcpFlags: s.syn ? 0x02 : 0x10, payload: new Uint8Array(s.payload),
      });
    }));
  }
  toString(): string { return `client packets ${JSON.stringify(this.sends)}`; }
}

class TargetReplies implements fc.Command<object, Sys> {
  constructor(readonly picks: number[]) {}
  check(): boolean { return true; }
  run(_: object, sys: Sys): void {
    if (sys.toTargets.length === 0) return;
    compare(sys, this.picks.map((k) => reply(sys.toTargets[k % sys.toTargets.length])));
  }
  toString(): string { return `target replies ${this.picks}`; }
}

/** What the target sends back: addresses and ports swapped (an echo request answered). */
function reply(p: Uint8Array): Uint8Array {
  const r = p.slice();
  const L = locate(r);
  const n = L.family === 4 ? 4 : 16;
  const s = L.family === 4 ? 12 : 8;
  const src = r.slice(s, s + n);
  r.copyWithin(s, s + n, s + 2 * n);
  r.set(src, s + n);
  if (L.proto === 6 || L.proto === 17) {
    const sp = r.slice(L.l4, L.l4 + 2);
    r.copyWithin(L.l4, L.l4 + 2, L.l4 + 4);
    r.set(sp, L.l4 + 2);
  } else {
    const old = (r[L.l4] << 8) | r[L.l4 + 1];
    r[L.l4] = L.family === 4 ? 0 : 129;
    let c = (~((r[L.l4 + 2] << 8) | r[L.l4 + 3]) & 0xffff) + (~old & 0xffff) + ((r[L.l4] << 8) | r[L.l4 + 1]);
    while (c > 0xffff) c = (c & 0xffff) + (c >>> 16);
    c = ~c & 0xffff;
    r[L.l4 + 2] = c >>> 8;
    r[L.l4 + 3] = c & 0xff;
  }
  return r;
}

class Advance implements fc.Command<object, Sys> {
  constructor(readonly seconds: number) {}
  check(): boolean { return true; }
  run(_: object, sys: Sys): void { sys.now += this.seconds; }
  toString(): string { return `advance ${this.seconds} s`; }
}

class Control implements fc.Command<object, Sys> {
  constructor(readonly op: "down" | "up" | "add" | "remove" | "weight" | "policy", readonly group: number, readonly target: number, readonly n: number) {}
  check(): boolean { return true; }
  run(_: object, sys: Sys): void {
    const g = GROUPS[this.group];
    const key = sys.keys[this.group];
    const addr = TARGETS[g.family][this.target];
    const port = g.proto === "icmp" ? 0 : 8080;
    const endpoint = g.family === 4 ? `${addr}:${port}` : `[${addr}]:${port}`;
    both(sys, (x) => {
      switch (this.op) {
        case "down": return x.setTargetUp(key, endpoint, false);
        case "up": return x.setTargetUp(key, endpoint, true);
        case "add": return x.addTarget(key, { address: addr, port, weight: 1 + (this.n % 3), aware: this.n % 4 === 0 });
        case "remove": return x.removeTarget(key, endpoint);
        case "weight": return x.setTargetWeight(key, endpoint, 1 + (this.n % 5));
        case "policy": return x.setPolicy(key, POLICIES[this.n % POLICIES.length]);
      }
    });
  }
  toString(): string { return `${this.op} group ${this.group} target ${this.target} (${this.n})`; }
}

const commands = [
  fc.array(fc.record({ group: fc.nat(GROUPS.length - 1), client: fc.nat(3), sport: fc.integer({ min: 1000, max: 1003 }), syn: fc.boolean(), payload: fc.nat(64) }), { minLength: 1, maxLength: 8 })
    .map((s) => new ClientPackets(s)),
  fc.array(fc.nat(), { minLength: 1, maxLength: 6 }).map((p) => new TargetReplies(p)),
  fc.oneof(fc.integer({ min: 1, max: 30 }), fc.constantFrom(61, 241, 301, 7441)).map((s) => new Advance(s)),
  fc.tuple(fc.constantFrom("down", "up", "add", "remove", "weight", "policy") as fc.Arbitrary<Control["op"]>, fc.nat(GROUPS.length - 1), fc.nat(3), fc.nat(20))
    .map(([op, g, t, n]) => new Control(op, g, t, n)),
];

test("after every step of random packet, time, health, membership and policy changes, the core and the reference model agree on every verdict, byte and counter", () => {
  fc.assert(
    fc.property(fc.commands(commands, { maxCommands: 40 }), fc.integer({ min: 0, max: 0xffffffff }), (cmds, seed) => {
      const settings = { address: PROXY4, address6: PROXY6, capacity: { flows: 256, groups: 16, targets: 64 }, randomSeed: seed, timeouts: { tcpEstablished: 7440, tcpTransitory: 240, udp: 300, icmp: 60 } };
      const dp = new DataPlane(settings);
      const ref = new ReferenceModel(settings);
      const keys = GROUPS.map((g) => {
        const k = dp.addGroup(g.spec);
        assert.equal(ref.addGroup(g.spec), k);
        return k;
      });
      const sys: Sys = { dp, ref, batch: dp.createBatch(16, 16 * 2048), now: 1000, toTargets: [], keys };
      fc.modelRun(() => ({ model: {}, real: sys }), cmds);
    }),
    { numRuns: runs },
  );
});
