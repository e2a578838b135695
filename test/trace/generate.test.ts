// The synthetic trace generator (src/trace): determinism, the pcap format,
// every checksum (recomputed in plain TypeScript), flows, Zipf packet counts,
// TCP/ICMP sequencing, frame sizes, timestamps, and the matching
// configuration. tshark's view of the same files is in tshark.test.ts.

import { test, describe, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import {
  generateTrace,
  traceGroups,
  traceConfig,
  resolveTraceOptions,
  TraceOptionsError,
  TRACE_DEFAULTS,
  TRACE_EPOCH_SECONDS,
  TRACE_PACKET_INTERVAL_US,
  type TraceOptions,
  type TraceSizes,
} from "../../src/trace/generate.js";
import { validateConfig } from "../../src/config/validate.js";
import { formatAddress, parseAddress, parsePrefix, prefixContains } from "../../src/net/addr.js";
import { checksumsValid, get16 } from "../helpers/packets.js";

const dir = mkdtempSync(join(tmpdir(), "pias-trace-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let fileNo = 0;
const tmpFile = (): string => join(dir, `t${fileNo++}.pcap`);

// ---------------------------------------------------------------- a small independent pcap reader

interface Packet {
  /** Microseconds since the Unix epoch. */
  us: number;
  frame: Uint8Array;
  family: 4 | 6;
  /** 6, 17, 1 or 58. */
  proto: number;
  src: string;
  dst: string;
  srcBytes: Uint8Array;
  /** TCP/UDP source port, or the ICMP echo identifier. */
  sport: number;
  /** TCP/UDP destination port, 0 for ICMP. */
  dport: number;
  tcpFlags: number;
  seq: number;
  /** Transport payload bytes. */
  payload: number;
  icmpSeq: number;
  /** "proto src sport dst dport": the flow's 5-tuple (ICMP: identifier, port 0). */
  flow: string;
  /** "proto address:port" of the destination, as traceGroups names it. */
  ta: string;
}

interface Trace {
  linktype: number;
  packets: Packet[];
}

function readTrace(path: string): Trace {
  const buf = readFileSync(path);
  assert.ok(buf.length >= 24, "pcap global header");
  assert.equal(buf.readUInt32LE(0), 0xa1b2c3d4, "little-endian, microsecond pcap magic");
  assert.equal(buf.readUInt16LE(4), 2);
  assert.equal(buf.readUInt16LE(6), 4);
  const linktype = buf.readUInt32LE(20);
  const packets: Packet[] = [];
  let o = 24;
  while (o < buf.length) {
    assert.ok(o + 16 <= buf.length, "truncated record header");
    const us = buf.readUInt32LE(o) * 1e6 + buf.readUInt32LE(o + 4);
    const incl = buf.readUInt32LE(o + 8);
    assert.equal(buf.readUInt32LE(o + 12), incl, "captured length = original length");
    assert.ok(buf.readUInt32LE(o + 4) < 1e6, "microseconds below one second");
    const frame = new Uint8Array(buf.buffer, buf.byteOffset + o + 16, incl);
    assert.ok(o + 16 + incl <= buf.length, "truncated record");
    packets.push(parseFrame(us, frame));
    o += 16 + incl;
  }
  return { linktype, packets };
}

function parseFrame(us: number, frame: Uint8Array): Packet {
  const type = get16(frame, 12);
  assert.ok(type === 0x0800 || type === 0x86dd, `ethertype ${type.toString(16)}`);
  const ip = frame.subarray(14);
  const family = type === 0x0800 ? 4 : 6;
  assert.equal(ip[0] >>> 4, family, "IP version matches the ethertype");
  let proto: number;
  let l4: number;
  let srcBytes: Uint8Array;
  let dstBytes: Uint8Array;
  if (family === 4) {
    assert.equal(ip[0], 0x45, "IPv4 without options");
    assert.equal(get16(ip, 2), ip.length, "IPv4 total length = frame - 14");
    assert.equal(get16(ip, 6) & 0x3fff, 0, "not a fragment");
    proto = ip[9];
    l4 = 20;
    srcBytes = ip.subarray(12, 16);
    dstBytes = ip.subarray(16, 20);
  } else {
    assert.equal(get16(ip, 4), ip.length - 40, "IPv6 payload length = frame - 54");
    proto = ip[6];
    l4 = 40;
    srcBytes = ip.subarray(8, 24);
    dstBytes = ip.subarray(24, 40);
  }
  const cks = checksumsValid(ip);
  assert.ok(cks.ip && cks.l4, `checksums of a ${family === 4 ? "IPv4" : "IPv6"} proto ${proto} packet`);
  let sport = 0;
  let dport = 0;
  let tcpFlags = 0;
  let seq = 0;
  let payload = 0;
  let icmpSeq = 0;
  if (proto === 6) {
    sport = get16(ip, l4);
    dport = get16(ip, l4 + 2);
    seq = ((get16(ip, l4 + 4) << 16) | get16(ip, l4 + 6)) >>> 0;
    const off = (ip[l4 + 12] >>> 4) * 4;
    tcpFlags = ip[l4 + 13];
    payload = ip.length - l4 - off;
  } else if (proto === 17) {
    sport = get16(ip, l4);
    dport = get16(ip, l4 + 2);
    assert.equal(get16(ip, l4 + 4), ip.length - l4, "UDP length");
    assert.notEqual(get16(ip, l4 + 6), 0, "UDP checksum present");
    payload = ip.length - l4 - 8;
  } else {
    assert.ok(proto === (family === 4 ? 1 : 58), `protocol ${proto}`);
    assert.equal(ip[l4], family === 4 ? 8 : 128, "echo request");
    assert.equal(ip[l4 + 1], 0, "code 0");
    sport = get16(ip, l4 + 4);
    icmpSeq = get16(ip, l4 + 6);
    payload = ip.length - l4 - 8;
  }
  const src = formatAddress(srcBytes);
  const dst = formatAddress(dstBytes);
  const pname = proto === 6 ? "tcp" : proto === 17 ? "udp" : "icmp";
  return {
    us, frame, family, proto, src, dst, srcBytes, sport, dport, tcpFlags, seq, payload, icmpSeq,
    flow: `${pname} ${src} ${sport} ${dst} ${dport}`,
    ta: `${pname} ${dst}:${dport}`,
  };
}

function byFlow(packets: readonly Packet[]): Map<string, Packet[]> {
  const flows = new Map<string, Packet[]>();
  for (const p of packets) {
    const list = flows.get(p.flow);
    if (list) list.push(p);
    else flows.set(p.flow, [p]);
  }
  return flows;
}

const SYN = 0x02;
const FIN = 0x01;
const ACK = 0x10;
const PSH = 0x08;

/** What the module header promises about one flow's packets, in order. */
function checkFlowSequence(list: readonly Packet[]): void {
  const first = list[0];
  if (first.proto === 6) {
    assert.equal(first.tcpFlags, SYN, "a TCP flow starts with a bare SYN");
    assert.equal(first.payload, 0);
    for (let k = 1; k < list.length; k++) {
      const p = list[k];
      const prev = list[k - 1];
      const last = k === list.length - 1;
      const expectFlags = ACK | (last ? FIN : 0) | (p.payload > 0 ? PSH : 0);
      assert.equal(p.tcpFlags, expectFlags, `flags of segment ${k} of ${list.length}`);
      const advance = prev.payload + (k === 1 ? 1 : 0); // the SYN counts one
      assert.equal(p.seq, (prev.seq + advance) >>> 0, "sequence numbers advance by the data sent");
    }
  } else if (first.proto !== 17) {
    list.forEach((p, k) => assert.equal(p.icmpSeq, (k + 1) & 0xffff, "echo sequence numbers 1, 2, 3, ..."));
  }
}

const CLIENTS4 = parsePrefix("10.0.0.0/8");
const CLIENTS6 = parsePrefix("fd00::/8");

/** Frame size classes of non-SYN packets: what each `sizes` allows. */
function allowedFrame(p: Packet, sizes: TraceSizes): readonly number[] {
  const small = p.family === 6 && p.proto === 6 ? 74 : 64;
  if (sizes === "64") return [small];
  if (sizes === "1500") return [1514];
  return [small, 590, 1514];
}

function isSyn(p: Packet): boolean {
  return p.proto === 6 && (p.tcpFlags & SYN) !== 0;
}

/** Every check that holds for any options. */
function checkTrace(path: string, opts: TraceOptions): Trace {
  const o = resolveTraceOptions(opts);
  const trace = readTrace(path);
  assert.equal(trace.linktype, 1, "LINKTYPE_ETHERNET");
  const { packets } = trace;
  assert.equal(packets.length, o.packets);
  packets.forEach((p, i) => {
    assert.equal(p.us, TRACE_EPOCH_SECONDS * 1e6 + i * TRACE_PACKET_INTERVAL_US, "timestamps advance 10 us a packet");
    assert.ok(prefixContains(p.family === 4 ? CLIENTS4 : CLIENTS6, p.srcBytes), `client ${p.src}`);
    if (isSyn(p)) assert.equal(p.frame.length, p.family === 4 ? 66 : 86, "SYN frame size");
    else assert.ok(allowedFrame(p, o.sizes).includes(p.frame.length), `frame of ${p.frame.length} bytes with sizes ${o.sizes}`);
  });
  const flows = byFlow(packets);
  assert.equal(flows.size, Math.min(o.packets, o.flows), "distinct 5-tuples = min(packets, flows)");
  const clients = new Set<string>();
  for (const list of flows.values()) {
    checkFlowSequence(list);
    clients.add(`${list[0].src} ${list[0].sport}`);
  }
  assert.equal(clients.size, flows.size, "every flow has its own client endpoint");
  const tas = new Set(traceGroups(opts).map((g) => `${g.protocol} ${g.address}:${g.port}`));
  for (const p of packets) assert.ok(tas.has(p.ta), `${p.ta} is one of traceGroups()`);
  return trace;
}

// ---------------------------------------------------------------- tests

describe("generateTrace", () => {
  const opts: TraceOptions = { packets: 20000, flows: 300, groups: 8, ipv6Share: 0.3, seed: 7 };

  test("the same options and seed give a byte-identical file", () => {
    const a = tmpFile();
    const b = tmpFile();
    generateTrace({ ...opts, out: a });
    generateTrace({ ...opts, out: b });
    assert.ok(readFileSync(a).equals(readFileSync(b)));
  });

  test("a different seed gives a different file", () => {
    const a = tmpFile();
    const b = tmpFile();
    generateTrace({ ...opts, sizes: "64", out: a });
    generateTrace({ ...opts, sizes: "64", seed: 8, out: b });
    const fa = readFileSync(a);
    const fb = readFileSync(b);
    assert.ok(!fa.equals(fb));
  });

  for (const sizes of ["imix", "64", "1500"] as const) {
    test(`with sizes ${sizes} every packet is well-formed with correct checksums, and every flow is in order`, () => {
      const out = tmpFile();
      const summary = generateTrace({ ...opts, sizes, out });
      const trace = checkTrace(out, { ...opts, sizes });
      assert.equal(summary.packets, 20000);
      assert.equal(summary.flows, 300);
      assert.equal(summary.bytes, readFileSync(out).length);
      assert.equal(summary.tcpFlows + summary.udpFlows + summary.icmpFlows, 300);
      const flows = byFlow(trace.packets);
      const protos = new Set([...flows.values()].map((l) => l[0].proto));
      assert.deepEqual([...protos].sort((x, y) => x - y), [1, 6, 17, 58], "TCP, UDP, ICMP and ICMPv6 flows");
    });
  }

  test("imix frames come in the 7:4:1 simple IMIX proportions", () => {
    const out = tmpFile();
    generateTrace({ ...opts, sizes: "imix", out });
    const data = readTrace(out).packets.filter((p) => !isSyn(p));
    const share = (pred: (p: Packet) => boolean): number => data.filter(pred).length / data.length;
    assert.ok(Math.abs(share((p) => p.frame.length <= 74) - 7 / 12) < 0.02);
    assert.ok(Math.abs(share((p) => p.frame.length === 590) - 4 / 12) < 0.02);
    assert.ok(Math.abs(share((p) => p.frame.length === 1514) - 1 / 12) < 0.02);
  });

  test("exactly floor(flows * ipv6Share) flows are IPv6", () => {
    for (const ipv6Share of [0, 0.1, 0.3, 1]) {
      const out = tmpFile();
      const o = { packets: 3000, flows: 250, groups: 3, ipv6Share };
      const summary = generateTrace({ ...o, out });
      const flows = byFlow(readTrace(out).packets);
      const v6 = [...flows.values()].filter((l) => l[0].family === 6).length;
      assert.equal(v6, Math.floor(250 * ipv6Share));
      assert.equal(summary.ipv6Flows, v6);
    }
  });

  test("packets per flow follow Zipf: the top flow has far more than the median, and rank r gets about top / r", () => {
    const out = tmpFile();
    generateTrace({ ...opts, out });
    const counts = [...byFlow(readTrace(out).packets).values()].map((l) => l.length).sort((x, y) => y - x);
    const median = counts[Math.floor(counts.length / 2)];
    assert.ok(counts[0] > 20 * median, `top ${counts[0]} vs median ${median}`);
    // Every flow has 1 + its 1/rank share of the rest (rounded down, +1 for a few top ranks).
    let W = 0;
    for (let r = 1; r <= 300; r++) W += 1 / r;
    counts.forEach((c, r) => {
      const expect = 1 + (20000 - 300) / (r + 1) / W;
      assert.ok(c >= Math.floor(expect) && c <= Math.floor(expect) + 2, `rank ${r + 1}: ${c} packets, expected ${expect.toFixed(1)}`);
    });
  });

  test("with fewer packets than flows, the trace has one packet per flow for `packets` flows", () => {
    const out = tmpFile();
    const o = { packets: 50, flows: 400, groups: 2 };
    assert.equal(generateTrace({ ...o, out }).flows, 50);
    checkTrace(out, o);
  });

  test("zero packets make a valid empty capture", () => {
    const out = tmpFile();
    generateTrace({ packets: 0, out });
    assert.equal(readFileSync(out).length, 24);
  });

  test("TCP flows with two or more packets end with a FIN, one-packet flows are a bare SYN", () => {
    const out = tmpFile();
    generateTrace({ packets: 4000, flows: 1500, groups: 1, ipv6Share: 0.2, out });
    const tcp = [...byFlow(readTrace(out).packets).values()].filter((l) => l[0].proto === 6);
    const lengths = new Set(tcp.map((l) => Math.min(l.length, 3)));
    assert.deepEqual([...lengths].sort(), [1, 2, 3], "flows of 1, 2 and more packets");
    for (const l of tcp) {
      assert.equal(l[0].tcpFlags, SYN);
      if (l.length >= 2) assert.ok((l[l.length - 1].tcpFlags & FIN) !== 0);
      assert.equal(l.filter((p) => p.tcpFlags & FIN).length, l.length >= 2 ? 1 : 0);
    }
  });

  test("the progress callback runs about every 1% and ends with done = total", () => {
    const calls: [number, number][] = [];
    generateTrace({ packets: 12345, flows: 10, out: tmpFile() }, (done, total) => calls.push([done, total]));
    assert.ok(calls.length >= 99 && calls.length <= 101, `${calls.length} calls`);
    for (let i = 1; i < calls.length; i++) assert.ok(calls[i][0] > calls[i - 1][0]);
    assert.deepEqual(calls[calls.length - 1], [12345, 12345]);
    assert.ok(calls.every(([, t]) => t === 12345));
  });

  test("invalid options throw TraceOptionsError before any file is created", () => {
    const bad: TraceOptions[] = [
      { packets: -1 },
      { packets: 1.5 },
      { flows: 0 },
      { flows: 16777217 },
      { groups: 0 },
      { groups: 1000001 },
      { ipv6Share: 1.01 },
      { ipv6Share: Number.NaN },
      { seed: 2 ** 60 },
      { sizes: "9000" as TraceSizes },
    ];
    for (const b of bad) {
      const out = tmpFile();
      assert.throws(() => generateTrace({ ...b, out }), TraceOptionsError, JSON.stringify(b));
      assert.ok(!existsSync(out));
    }
  });

  test("defaults: 100000 packets, 1000 flows, 1 group, seed 1, imix, 10% IPv6; undefined means default", () => {
    assert.deepEqual(TRACE_DEFAULTS, { packets: 100000, flows: 1000, groups: 1, seed: 1, sizes: "imix", ipv6Share: 0.1 });
    assert.deepEqual(resolveTraceOptions({ packets: undefined, sizes: undefined }), TRACE_DEFAULTS);
  });

  test("random small options always give a consistent trace (property)", () => {
    const arb = fc.record({
      packets: fc.integer({ min: 0, max: 1500 }),
      flows: fc.integer({ min: 1, max: 120 }),
      groups: fc.integer({ min: 1, max: 20 }),
      seed: fc.integer({ min: 0, max: 2 ** 40 }),
      sizes: fc.constantFrom<TraceSizes>("imix", "64", "1500"),
      ipv6Share: fc.oneof(fc.constantFrom(0, 1), fc.double({ min: 0, max: 1, noNaN: true })),
    });
    fc.assert(
      fc.property(arb, (o) => {
        const out = tmpFile();
        generateTrace({ ...o, out });
        checkTrace(out, o);
        rmSync(out);
      }),
      { numRuns: 25, seed: 42 },
    );
  });
});

describe("traceGroups and traceConfig", () => {
  const inPrefixes = (text: string, prefixes: string[]): boolean =>
    prefixes.some((p) => prefixContains(parsePrefix(p), parseAddress(text).bytes));

  test("groups: 8 TCP/UDP services per anycast address plus an ICMP group per address, for each family in use", () => {
    const g = traceGroups({ groups: 3 });
    assert.deepEqual(
      g.map((x) => `${x.family} ${x.protocol} ${x.address}:${x.port}`),
      [
        "4 tcp 203.0.113.10:80",
        "4 udp 203.0.113.10:53",
        "4 tcp 203.0.113.10:443",
        "4 icmp 203.0.113.10:0",
        "6 tcp 2001:db8:a::10:80",
        "6 udp 2001:db8:a::10:53",
        "6 tcp 2001:db8:a::10:443",
        "6 icmp 2001:db8:a::10:0",
      ],
    );
    assert.equal(traceGroups({ groups: 1, ipv6Share: 0 }).length, 2);
    assert.ok(traceGroups({ groups: 9, ipv6Share: 1 }).every((x) => x.family === 6));
  });

  test("many groups spill from 203.0.113.0/24 into 198.18.0.0/15, all TAs distinct", () => {
    const g = traceGroups({ groups: 2100, ipv6Share: 0 });
    assert.equal(g.length, 2100 + Math.ceil(2100 / 8));
    assert.equal(new Set(g.map((x) => `${x.protocol} ${x.address}:${x.port}`)).size, g.length);
    assert.ok(g.every((x) => inPrefixes(x.address, ["203.0.113.0/24", "198.18.0.0/15"])));
    assert.equal(g[g.length - 1].address, "198.18.0.18");
  });

  test("traceConfig() passes validateConfig, as an object and through JSON", () => {
    for (const o of [{}, { groups: 20, ipv6Share: 0.5 }, { ipv6Share: 0 }, { ipv6Share: 1 }, { groups: 2100, flows: 100000 }]) {
      const cfg = traceConfig(o);
      const v = validateConfig(JSON.parse(JSON.stringify(cfg)));
      assert.equal(v.groups.length, traceGroups(o).length);
      assert.ok(v.capacity.flows >= resolveTraceOptions(o).flows);
      assert.ok(v.groups.every((g) => g.targets.length === 3 && g.policy === "affinity"));
      for (const g of v.groups) {
        const ranges = g.family === 4 ? ["203.0.113.0/24", "198.18.0.0/15"] : ["2001:db8:a::/48"];
        assert.ok(inPrefixes(g.address, ranges), g.address);
        for (const t of g.targets) {
          assert.ok(inPrefixes(t.address, g.family === 4 ? ["192.0.2.0/24", "100.64.0.0/10"] : ["2001:db8:b::/48"]), t.address);
          assert.equal(t.port, g.protocol === "icmp" ? 0 : g.port + 8000);
        }
      }
    }
    assert.equal(validateConfig(traceConfig({ groups: 4 }, 1)).groups[0].targets.length, 1);
  });

  test("every TA the trace sends to has a group in traceConfig()", () => {
    const o = { packets: 5000, flows: 400, groups: 30, ipv6Share: 0.25 };
    const out = tmpFile();
    generateTrace({ ...o, out });
    const v = validateConfig(traceConfig(o));
    const groups = new Set(v.groups.map((g) => `${g.protocol} ${g.address}:${g.port}`));
    const tas = new Set(readTrace(out).packets.map((p) => p.ta));
    assert.ok(tas.size > 20);
    for (const ta of tas) assert.ok(groups.has(ta), ta);
  });

  test("traceConfig refuses more targets than a configuration may hold", () => {
    assert.throws(() => traceConfig({ groups: 1000000 }, 3), TraceOptionsError);
    assert.throws(() => traceConfig({}, -1), TraceOptionsError);
  });
});
