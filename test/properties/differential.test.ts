// Differential test: the Wasm core (through the DataPlane host API) against
// the plain TypeScript reference model (src/reference/model.ts), which
// recomputes every checksum from scratch. Same configuration, same batches,
// same control calls: every packet must get the same verdict, drop reason,
// AUX flags, wire length and output bytes, and the counters and per-target
// statistics must agree after every step.
//
// PIAS_FUZZ_RUNS=N raises the number of scenarios.

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { AuxFlag, Layout, Reason, Verdict } from "../../assembly/shared/abi.js";
import { DataPlane } from "../../src/core/dataplane.js";
import type { PacketBatch } from "../../src/core/batch.js";
import { ReferenceModel, type ModelPacket, type ModelResult } from "../../src/reference/model.js";
import { parseAddress } from "../../src/net/addr.js";
import { buildIcmpError, buildPacket, checksumsValid, get16, locate, type PacketSpec } from "../helpers/packets.js";
import {
  addedTarget, groupSpec, History, resolve, scenario, settingsOf, type Built, type ControlChoice, type GroupChoice,
  type Scenario,
} from "./model-scenario.js";

const fuzz = process.env.PIAS_FUZZ_RUNS ? Number(process.env.PIAS_FUZZ_RUNS) : undefined;

/**
 * Scenarios are big and shrinking one can take minutes: 20 s after the first
 * failure, every further candidate passes at once, so fast-check reports the
 * smallest failing scenario found by then.
 */
function boundedShrink(predicate: (sc: Scenario) => void): (sc: Scenario) => void {
  let failedAt = 0;
  return (sc) => {
    if (failedAt !== 0 && Date.now() - failedAt > 20_000) return;
    try {
      predicate(sc);
    } catch (e) {
      if (failedAt === 0) failedAt = Date.now();
      throw e;
    }
  };
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/** The segment area of both sides: small enough that a batch of super-packets can run out of it (gso-no-room). */
const SEGMENT_SLOTS = 96;
const SEGMENT_BYTES = 96 * 1024;

function describe(r: { verdict: number; reason: number; aux: number; wirelen: number; data: Uint8Array }): string {
  const v = r.verdict === Verdict.Forward ? "forward" : r.verdict === Verdict.Drop ? "drop" : `verdict ${r.verdict}`;
  return `${v} reason=${Reason[r.reason] ?? r.reason} aux=${r.aux} wirelen=${r.wirelen} len=${r.data.length}\n    ${hex(r.data)}`;
}

/** Both sides of one run. */
class Pair {
  readonly dp: DataPlane;
  readonly model: ReferenceModel;
  readonly batch: PacketBatch;
  readonly replies: PacketBatch;
  readonly segments: PacketBatch;
  readonly groupKeys: string[] = [];

  constructor(readonly sc: Scenario) {
    const settings = settingsOf(sc.settings);
    this.dp = new DataPlane(settings);
    this.model = new ReferenceModel(settings);
    this.batch = this.dp.createBatch(64, 64 * 1024);
    this.replies = this.dp.createBatch(64, 64 * 2048);
    // super-packets to aware targets are cut into a segment area: as big on both sides
    this.segments = this.dp.createSegmentArea(SEGMENT_SLOTS, SEGMENT_BYTES);
    this.model.createSegmentArea(SEGMENT_SLOTS, SEGMENT_BYTES);
    for (const g of sc.groups) {
      const spec = groupSpec(g);
      this.groupKeys.push(this.same(`addGroup ${spec.address}`, () => this.dp.addGroup(spec), () => this.model.addGroup(spec)) as string);
    }
    this.compareState("after the configuration");
  }

  /** Run a control call on both sides: both throw, or both return the same. */
  same(what: string, core: () => unknown, model: () => unknown): unknown {
    let a: unknown, b: unknown;
    let ea: unknown, eb: unknown;
    try { a = core(); } catch (e) { ea = e; }
    try { b = model(); } catch (e) { eb = e; }
    assert.equal(eb !== undefined, ea !== undefined, `${what}: core ${ea ? `threw ${String(ea)}` : "succeeded"}, model ${eb ? `threw ${String(eb)}` : "succeeded"}`);
    assert.deepEqual(b, a, `${what}: results differ`);
    return a;
  }

  compareState(when: string): void {
    assert.deepEqual(this.model.counters(), this.dp.counters(), `counters ${when}`);
    assert.deepEqual(this.model.targetStats(), this.dp.targetStats(), `target statistics ${when}`);
  }

  control(c: ControlChoice, now: number): void {
    const gi = c.g % this.sc.groups.length;
    const g: GroupChoice = this.sc.groups[gi];
    const key = this.groupKeys[gi];
    const endpoints = this.dp.targetStats().filter((t) => t.group === key).map((t) => t.endpoint);
    const ep = endpoints.length ? endpoints[c.t % endpoints.length] : "192.0.2.99:0";
    const what = `${c.op} ${key} ${ep}`;
    switch (c.op) {
      case "down":
      case "up":
        this.same(what, () => this.dp.setTargetUp(key, ep, c.op === "up"), () => this.model.setTargetUp(key, ep, c.op === "up"));
        break;
      case "remove":
        this.same(what, () => this.dp.removeTarget(key, ep), () => this.model.removeTarget(key, ep));
        break;
      case "add": {
        const t = addedTarget(g, c);
        this.same(`add ${key} ${t.address}`, () => this.dp.addTarget(key, t), () => this.model.addTarget(key, t));
        break;
      }
      case "weight":
        this.same(what, () => this.dp.setTargetWeight(key, ep, c.value % 5), () => this.model.setTargetWeight(key, ep, c.value % 5));
        break;
      case "policy":
        this.same(what, () => this.dp.setPolicy(key, c.policy, c.affinity), () => this.model.setPolicy(key, c.policy, c.affinity));
        break;
      case "removeGroup":
        this.same(what, () => this.dp.removeGroup(key), () => this.model.removeGroup(key));
        break;
      case "readdGroup": {
        const spec = groupSpec(g);
        this.same(`readd ${key}`, () => this.dp.addGroup(spec), () => this.model.addGroup(spec));
        break;
      }
      case "expire":
        this.same(`expireIdle(${now + c.value})`, () => this.dp.expireIdle((now + c.value) >>> 0), () => this.model.expireIdle((now + c.value) >>> 0));
        break;
      case "pending":
        this.same(`pending ${key} ${c.aware}`, () => this.dp.setGroupPending(key, c.aware), () => this.model.setGroupPending(key, c.aware));
        break;
    }
    this.compareState(`after ${what}`);
  }

  /** One batch on both sides; returns the results (equal on both sides). */
  run(built: Built[], times: number[]): ModelResult[] {
    const { batch, dp, model } = this;
    batch.clear();
    const inputs: ModelPacket[] = built.map((b, i) => ({ data: b.data, link: b.link, wirelen: b.wirelen, time: times[i] }));
    for (const p of inputs) assert.ok(batch.add(p.data, { link: p.link, time: p.time, wirelen: p.wirelen }), "batch full");
    dp.process(batch);
    const expected = model.process(inputs) as ModelResult[];
    this.compareSegments();
    for (let i = 0; i < inputs.length; i++) {
      const got = { verdict: batch.verdict(i), reason: batch.reason(i), aux: batch.aux(i), wirelen: batch.wirelen(i), data: batch.packet(i).slice() };
      const want = expected[i];
      const same = got.verdict === want.verdict && got.reason === want.reason && got.aux === want.aux &&
        got.wirelen === want.wirelen && hex(got.data) === hex(want.data);
      if (!same) {
        assert.fail(`packet ${i} of the batch (${built[i].what}, link ${inputs[i].link}, time ${inputs[i].time}, wirelen ${inputs[i].wirelen ?? "-"}):\n` +
          `  input ${hex(inputs[i].data)}\n  core  ${describe(got)}\n  model ${describe(want)}`);
      }
      if (built[i].clean && got.verdict === Verdict.Forward) {
        const ip = got.data.subarray(built[i].linkLen);
        assert.deepEqual(checksumsValid(ip), { ip: true, l4: true, quoted: true }, `packet ${i} (${built[i].what}): a clean input's output verifies`);
      }
    }
    return expected;
  }

  /** What the batch put into the segment area (segments of super-packets, packets moved after them): the same on both sides. */
  compareSegments(): void {
    const want = this.model.segments();
    const n = this.dp.segmentsEmitted();
    assert.equal(n, want.length, "packets in the segment area");
    this.segments.count = n;
    for (let i = 0; i < n; i++) {
      const got = { verdict: this.segments.verdict(i), reason: this.segments.reason(i), aux: this.segments.aux(i), wirelen: this.segments.wirelen(i), data: this.segments.packet(i).slice() };
      const w = want[i];
      if (got.verdict !== w.verdict || got.aux !== w.aux || got.wirelen !== w.wirelen || hex(got.data) !== hex(w.data)) {
        assert.fail(`segment area packet ${i}:\n  core  ${describe(got)}\n  model ${describe(w)}`);
      }
    }
  }

  /** reflect_batch + process_batch in the core against reflect + process in the model. */
  reflect(results: ModelResult[]): (ModelResult | null)[] {
    const { batch, replies, dp, model } = this;
    const n = results.length;
    const made = dp.reflectBatch(batch.desc, n, replies);
    dp.processBatch(replies.desc, n);
    const want = model.process(model.reflect(results));
    assert.equal(made, want.filter((r) => r !== null).length, "number of replies reflect_batch made");
    for (let i = 0; i < n; i++) {
      const off = replies.offset(i);
      const w = want[i];
      assert.equal(off !== 0, w !== null, `reply ${i}: core made ${off ? "one" : "none"}, model ${w ? "one" : "none"}`);
      if (w === null) continue;
      const got = { verdict: replies.verdict(i), reason: replies.reason(i), aux: replies.aux(i), wirelen: replies.wirelen(i), data: replies.packet(i).slice() };
      const same = got.verdict === w.verdict && got.reason === w.reason && got.aux === w.aux && got.wirelen === w.wirelen && hex(got.data) === hex(w.data);
      if (!same) assert.fail(`reply ${i} to\n  ${hex(results[i].data)}\n  core  ${describe(got)}\n  model ${describe(w)}`);
    }
    return want;
  }
}

/** Play a whole scenario on both sides, comparing as it goes. */
function play(sc: Scenario): void {
  const pair = new Pair(sc);
  const history = new History();
  let now = sc.settings.startTime;
  for (const step of sc.steps) {
    if (step.kind === "control") {
      pair.control(step.control, now);
      continue;
    }
    now = (now + step.advance) >>> 0;
    const built = step.packets.map((r) => resolve(r, sc.groups, history));
    const times = step.packets.map((r) => (now + r.dt) >>> 0);
    const results = pair.run(built, times);
    pair.compareState(`after a batch at time ${now}`);
    for (let i = 0; i < built.length; i++) {
      const b = built[i];
      const r = results[i];
      if (b.clientSpec) History.push(history.clients, b.clientSpec);
      if (!b.clean || r.verdict !== Verdict.Forward || (r.aux & (AuxFlag.Encapsulated | AuxFlag.IcmpError))) continue;
      const ip = r.data.slice(b.linkLen);
      History.push(r.aux & AuxFlag.ToTarget ? history.toTarget : history.toClient, ip);
    }
    if (step.reflect) {
      const replies = pair.reflect(results);
      pair.compareState(`after reflecting the batch at time ${now}`);
      replies.forEach((r, i) => {
        // a reflected reply that came back out is A:g -> C:c: later ICMP errors may quote it
        if (r && built[i].clean && r.verdict === Verdict.Forward) History.push(history.toClient, r.data.slice(built[i].linkLen));
      });
    }
  }
}

test("the Wasm core and the reference model give the same verdict, reason, AUX flags, wire length and bytes for every packet, and the same counters and target statistics after every batch and control call", () => {
  fc.assert(fc.property(scenario(), boundedShrink(play)), { numRuns: fuzz ?? 1000 });
});

test("reflect_batch then process_batch in the core and reflect then process in the model make the same replies with the same verdicts, bytes and counters", () => {
  fc.assert(fc.property(scenario({ reflect: fc.constant(true), maxSteps: 5 }), boundedShrink(play)), { numRuns: fuzz ? Math.ceil(fuzz / 4) : 300 });
});

test("with small flow tables and few NAT ports (eviction, FlowTableFull, NatPortsExhausted, sweeps) the core and the model still agree packet for packet", () => {
  const small = scenario({ maxSteps: 14, maxPackets: 16 }).map((sc) => ({
    ...sc,
    settings: { ...sc.settings, flows: 4, natPorts: [40000, 40002] as [number, number], timeouts: { tcpEstablished: 100, tcpTransitory: 20, udp: 40, icmp: 10 } },
  }));
  fc.assert(fc.property(small, boundedShrink(play)), { numRuns: fuzz ? Math.ceil(fuzz / 4) : 300 });
});

test("under churn (targets going down and up, added, removed, reweighted, policies changed between short batches) the core and the model re-pin, refuse and forward the same packets", () => {
  fc.assert(fc.property(scenario({ churn: true, maxSteps: 12 }), boundedShrink(play)), { numRuns: fuzz ? Math.ceil(fuzz / 4) : 400 });
});

test("with more flows than one sweep inspects (64 records a batch) the core and the model expire, reuse and evict the same records", () => {
  const crowd = scenario({ crowd: true, maxSteps: 8, maxPackets: 48 }).map((sc) => ({
    ...sc,
    settings: { ...sc.settings, flows: 128, timeouts: { tcpEstablished: 100, tcpTransitory: 20, udp: 40, icmp: 10 } },
  }));
  fc.assert(fc.property(crowd, boundedShrink(play)), { numRuns: fuzz ? Math.ceil(fuzz / 8) : 150 });
});

// ---------------------------------------------------------------- directed cases random runs cannot reach

/** A one-group scenario (UDP on every port of the first TA, one legacy target on port 0). */
function udpPair(family: 4 | 6): Pair {
  return new Pair({
    settings: {
      startTime: 1000, natPorts: [1024, 65535], timeouts: { tcpEstablished: 7440, tcpTransitory: 240, udp: 300, icmp: 60 },
      flows: 1024, verifyChecksums: false, randomSeed: 1, tunnelMtu: 1500, system: false,
    },
    groups: [{ protocol: "udp", family, ta: 0, port: 0, policy: "affinity", affinity: "client", targets: [{ addr: 0, port: 0, weight: 1, aware: false, distance: 0, label: 0 }], filler: 0, scopes: [] }],
    steps: [],
  });
}

const raw = (data: Uint8Array, what: string): Built => ({ data, link: 101, linkLen: 0, clean: true, what });

/** A payload whose first word makes the UDP checksum of `spec` (with this payload) compute to 0. */
function zeroingPayload(spec: PacketSpec): Uint8Array {
  const probe = buildPacket({ ...spec, payload: new Uint8Array(16) });
  const c0 = get16(probe, locate(probe).l4 + 6); // complement of the sum with the word at 0
  const payload = new Uint8Array(16);
  payload[0] = c0 >>> 8; // adding ~sum to the sum makes it 0xffff: the checksum computes to 0
  payload[1] = c0 & 0xff;
  return payload;
}

test("a UDP checksum that computes to 0 is sent as 0xffff after forward NAT, reverse NAT and ICMP quote translation, in the core and in the model alike (IPv4 and IPv6)", () => {
  for (const family of [4, 6] as const) {
    const pair = udpPair(family);
    const a = (s: string): Uint8Array => parseAddress(s).bytes;
    const client = family === 4 ? a("10.0.0.1") : a("2001:db8:c::1");
    const ta = family === 4 ? a("203.0.113.10") : a("2001:db8:a::10");
    const first: PacketSpec = { family, proto: "udp", src: client, dst: ta, sport: 5000, dport: 53, payload: new Uint8Array(4) };
    const [fwd] = pair.run([raw(buildPacket(first), "first")], [1000]);
    assert.equal(fwd.verdict, Verdict.Forward);
    const F = locate(fwd.data);
    const nport = get16(fwd.data, F.l4);
    const target = F.dst.slice();
    const proxy = F.src.slice();

    // forward: the NATed packet P:nport -> T:53 has a checksum that computes to 0
    const outSpec: PacketSpec = { family, proto: "udp", src: proxy, dst: target, sport: nport, dport: 53, payload: new Uint8Array(0) };
    const p1 = zeroingPayload(outSpec);
    const [r1] = pair.run([raw(buildPacket({ ...first, payload: p1 }), "forward")], [1001]);
    assert.equal(get16(r1.data, F.l4 + 6), 0xffff, "forward NAT output");

    // reverse: the reply T:53 -> P:nport becomes A:53 -> C:5000 whose checksum computes to 0
    const p2 = zeroingPayload({ family, proto: "udp", src: ta, dst: client, sport: 53, dport: 5000, payload: new Uint8Array(0) });
    const [r2] = pair.run([raw(buildPacket({ ...outSpec, src: target, dst: proxy, sport: 53, dport: nport, payload: p2 }), "reverse")], [1002]);
    assert.equal(r2.verdict, Verdict.Forward);
    assert.equal(get16(r2.data, F.l4 + 6), 0xffff, "reverse NAT output");

    // ICMP error quoting a whole forwarded packet whose client original had a checksum computing to 0
    const p3 = zeroingPayload(first);
    const original = buildPacket({ ...first, payload: p3 });
    const [r3] = pair.run([raw(original, "original")], [1003]);
    const router = family === 4 ? a("192.0.2.254") : a("2001:db8:d::fe");
    const err = buildIcmpError(family, router, proxy, family === 4 ? 3 : 1, family === 4 ? 3 : 4, r3.data);
    const [r4] = pair.run([raw(err, "icmp error")], [1004]);
    assert.equal(r4.verdict, Verdict.Forward);
    const quote = r4.data.subarray(locate(r4.data).l4 + 8);
    assert.deepEqual(quote, original, "the translated quote is the client's packet, checksum 0xffff included");
    pair.compareState("after the directed packets");
  }
});

/** A pair with one UDP group at 203.0.113.10 and its one legacy target at port `port` (0: the packet's), for the NAT port properties. */
function natPortPair(natPorts: [number, number], flows: number, port: number): Pair {
  return new Pair({
    settings: {
      startTime: 1000, natPorts, timeouts: { tcpEstablished: 100, tcpTransitory: 20, udp: 40, icmp: 10 },
      flows, verifyChecksums: false, randomSeed: 1, tunnelMtu: 1500, system: false,
    },
    groups: [{ protocol: "udp", family: 4, ta: 0, port, policy: "affinity", affinity: "client", targets: [{ addr: 0, port, weight: 1, aware: false, distance: 0, label: 0 }], filler: 0, scopes: [] }],
    steps: [],
  });
}

/** Each batch's UDP packets from 10.1.0.client to the group, `dt` seconds after the last batch, through both sides; the state compared after each. */
function runNatBatches(pair: Pair, batches: { dt: number; packets: { client: number; sport: number; dport: number }[] }[]): void {
  let now = 1000;
  for (const b of batches) {
    now += b.dt;
    const built = b.packets.map((p) => raw(buildPacket({ family: 4, proto: "udp", src: new Uint8Array([10, 1, 0, p.client]), dst: parseAddress("203.0.113.10").bytes, sport: p.sport, dport: p.dport, payload: new Uint8Array(4) }), `client ${p.client}:${p.sport} -> :${p.dport}`));
    pair.run(built, b.packets.map(() => now));
    pair.compareState(`after a batch at time ${now}`);
  }
}

test("NAT ports toward a port-0 target, over more binding spaces (destination ports) than the port-space pool holds and with idle holders not yet freed, are the same in the core and the model (assembly/flow/ports.ts)", () => {
  // 16 flows: a pool of 16 bitmaps (ports.ts portsInit), and with 4 NAT ports a space is dense from its first binding;
  // each destination port of a port-0 target is a binding space of its own
  const packet = fc.record({ client: fc.integer({ min: 1, max: 12 }), sport: fc.integer({ min: 1000, max: 1003 }), dport: fc.integer({ min: 1, max: 40 }) });
  const batch = fc.record({ dt: fc.integer({ min: 0, max: 30 }), packets: fc.array(packet, { minLength: 1, maxLength: 12 }) });
  fc.assert(fc.property(fc.array(batch, { minLength: 1, maxLength: 12 }), (batches) => {
    runNatBatches(natPortPair([40000, 40003], 16, 0), batches);
  }), { numRuns: fuzz ? Math.ceil(fuzz / 4) : 200 });
});

test("NAT ports in a port space that turns dense while flows come and go (its bitmap built over several batches from the records present, ports.ts) are the same in the core and the model", () => {
  // 384 NAT ports: a space is dense from 64 bindings; up to 250 flows: a build pass walks 64 records or two a packet a batch
  const packet = fc.record({ client: fc.integer({ min: 1, max: 250 }), sport: fc.integer({ min: 1000, max: 1001 }), dport: fc.constant(53) });
  const batch = fc.record({ dt: fc.integer({ min: 0, max: 10 }), packets: fc.array(packet, { minLength: 1, maxLength: 64 }) });
  fc.assert(fc.property(fc.array(batch, { minLength: 1, maxLength: 12 }), (batches) => {
    runNatBatches(natPortPair([40000, 40383], 256, 53), batches);
  }), { numRuns: fuzz ? Math.ceil(fuzz / 4) : 200 });
});

// ---------------------------------------------------------------- regressions
// Minimal cases of core bugs found while building the model, fixed since.

function oneGroupPlane(protocol: "tcp" | "udp"): DataPlane {
  return DataPlane.create({ address: "198.51.100.1", capacity: { flows: 64, groups: 8, targets: 16 } },
    [{ protocol, address: "203.0.113.10", port: 0, targets: [{ address: "192.0.2.11" }] }]);
}

const clientPacket = (protocol: "tcp" | "udp", c: number): Uint8Array => buildPacket({
  family: 4, proto: protocol, src: new Uint8Array([10, 0, 0, c]), dst: new Uint8Array([203, 0, 113, 10]),
  sport: 1000, dport: 53, tcpFlags: 0x02, payload: new Uint8Array(8),
});

test("reflect_batch gives every output slot it does not fill OFF = 0, also when the arena runs out (assembly/host/reflect.ts)", () => {
  const dp = oneGroupPlane("udp");
  const batch = dp.createBatch(3);
  const out = dp.createBatch(3);
  for (const c of [1, 2, 3]) batch.add(clientPacket("udp", c), { time: 1000 });
  dp.process(batch);
  assert.equal(dp.reflectBatch(batch.desc, 3, out), 3);
  dp.processBatch(out.desc, 3);
  const len = batch.packet(0).length;
  const room = Layout.HEADROOM + ((len + 7) & ~7) + Layout.HEADROOM + 8; // one reply fits, two do not
  assert.equal(dp.reflectBatch(batch.desc, 3, out, room), 1);
  assert.deepEqual([0, 1, 2].map((i) => out.offset(i) !== 0), [true, false, false], "slots without a reply have OFF = 0");
});

test("a batch without packets does not expire flows: the sweep runs with the time of the last packet, not 0 (assembly/pipeline.ts process_batch)", () => {
  const dp = oneGroupPlane("udp");
  const batch = dp.createBatch(1);
  const empty = dp.createBatch(1); // fresh descriptors: OFF = 0, an empty slot
  batch.add(clientPacket("udp", 1), { time: 0x80000000 + 100 });
  dp.process(batch);
  assert.equal(dp.counters().flowsLive, 1);
  dp.processBatch(empty.desc, 1); // as after reflect_batch made no reply
  assert.equal(dp.counters().flowsLive, 1, "no time passed: the flow is still live");
});

test("a target's reply in the batch whose earlier packet moved its flow to a PIAS-aware target is no-binding, as in a batch of its own (assembly/flow/flows.ts refHolds: the prefetch saw the reverse key)", () => {
  // one endpoint twice: legacy (NAT) and PIAS-aware; round robin puts the first flow on the legacy one
  const dp = DataPlane.create({ address: "198.51.100.1", capacity: { flows: 64, groups: 8, targets: 16 } }, [{
    protocol: "udp", address: "203.0.113.10", port: 53, policy: "round-robin",
    targets: [{ address: "192.0.2.11", port: 53 }, { address: "192.0.2.11", port: 0, aware: true }],
  }]);
  const batch = dp.createBatch(2);
  const fromClient = clientPacket("udp", 1);
  batch.add(fromClient, { time: 1000 });
  dp.process(batch);
  const nated = batch.packet(0);
  assert.equal(nated.length, fromClient.length, "NATed, not tunnelled");
  const reply = buildPacket({
    family: 4, proto: "udp", src: new Uint8Array([192, 0, 2, 11]), dst: new Uint8Array([198, 51, 100, 1]),
    sport: 53, dport: get16(nated, locate(nated).l4), payload: new Uint8Array(8),
  });
  dp.setTargetUp(dp.groupKeys()[0], "192.0.2.11:53", false);
  batch.clear();
  batch.add(fromClient, { time: 1001 }); // moves the flow to the aware target: its binding goes
  batch.add(reply, { time: 1001 });
  dp.process(batch);
  assert.equal(batch.packet(0).length, fromClient.length + 20, "tunnelled to the aware target");
  assert.equal(Reason[batch.reason(1)], Reason[Reason.NoBinding], "the old binding's reply, same batch");
  batch.clear();
  batch.add(reply, { time: 1002 });
  dp.process(batch);
  assert.equal(Reason[batch.reason(0)], Reason[Reason.NoBinding], "the same reply, a batch of its own");
});

test("flows of a removed group no longer match: after removeGroup and addGroup the same client tuple gets a new flow (assembly/group/groups.ts group_remove)", () => {
  for (const protocol of ["tcp", "udp"] as const) {
    const dp = oneGroupPlane(protocol);
    const batch = dp.createBatch(1);
    batch.add(clientPacket(protocol, 1), { time: 1000 });
    dp.process(batch);
    assert.equal(batch.verdict(0), Verdict.Forward);
    const key = dp.groupKeys()[0];
    const spec = { protocol, address: "203.0.113.10", port: 0, targets: [{ address: "192.0.2.11" }] };
    dp.removeGroup(key);
    dp.addGroup(spec);
    batch.clear();
    batch.add(clientPacket(protocol, 1), { time: 1001 });
    dp.process(batch);
    assert.equal(Reason[batch.reason(0)], Reason[Reason.None], `${protocol}: dropped`);
    assert.equal(batch.verdict(0), Verdict.Forward);
  }
});
