// Malformed input: the core gives every packet a verdict and never traps.

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Counts, Reason, Verdict } from "../../assembly/shared/abi.js";
import { buildPacket, packetSpec, withEthernet } from "../helpers/packets.js";
import { TA4, TA6, bytesOf, standardDataPlane } from "../helpers/dataplane.js";
import { readCapture, type CapturedPacket } from "../../src/capture/file.js";
import { capture } from "../helpers/paths.js";

const runs = Number(process.env.PIAS_FUZZ_RUNS ?? 500);
const LINKS = [0, 1, 101, 113, 228, 229, 276, 9, 0xffff];

/** Mutations of a valid packet: flipped, overwritten, truncated or extended bytes. */
const mutated = fc
  .tuple(
    packetSpec().map((s) => ({ ...s, dst: bytesOf(s.family === 4 ? TA4 : TA6) })),
    fc.integer({ min: 0, max: 3 }),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
    fc.option(fc.nat(), { nil: undefined }),
  )
  .map(([spec, tags, edits, cut]) => {
    let p = withEthernet(buildPacket(spec), tags);
    for (const [at, v] of edits) p[at % p.length] = v;
    if (cut !== undefined) p = p.slice(0, cut % (p.length + 1));
    return p;
  });

function checkVerdicts(packets: Uint8Array[], links: number[]): void {
  checkPackets(packets.map((data, i) => ({ data, link: links[i % links.length], wirelen: data.length })));
}

function checkPackets(packets: { data: Uint8Array; link: number; wirelen: number }[]): void {
  const dp = standardDataPlane();
  const batch = dp.createBatch(64, 64 * 4096);
  for (let i = 0; i < packets.length; i++) {
    const p = packets[i];
    assert.ok(batch.add(p.data, { link: p.link, wirelen: Math.max(p.wirelen, p.data.length), time: 1000 + i }));
  }
  dp.process(batch);
  for (let i = 0; i < packets.length; i++) {
    const v = batch.verdict(i);
    assert.ok(v === Verdict.Forward || v === Verdict.Drop || v === Verdict.ToHost, `verdict ${v}`);
    const r = batch.reason(i);
    if (v === Verdict.Drop) assert.ok(r > 0 && r < Counts.REASON_COUNT, `packet ${i} dropped without a reason`);
    else assert.equal(r, Reason.None);
  }
  const c = dp.counters();
  assert.equal(c.packets, packets.length);
  assert.equal(c.forwarded + c.dropped + c.toHost, packets.length, "every packet counted exactly once");
  assert.equal(Object.values(c.drops).reduce((a, b) => a + b, 0), c.dropped, "every drop has a reason counter");
}

test("arbitrary bytes on any link type never trap and always get a verdict", () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 200 }), { minLength: 1, maxLength: 32 }),
      fc.array(fc.constantFrom(...LINKS), { minLength: 1, maxLength: 8 }),
      (packets, links) => checkVerdicts(packets, links),
    ),
    { numRuns: runs },
  );
});

/** Packets of real captures with odd corners: fragments, tunnels, ICMP errors, options, VLANs, SLL, NULL. */
const REAL: CapturedPacket[] = [
  "arkime__arkime_synthetic.pcap", "ndpi__6in4tunnel.pcap", "ppp__ip4_fragments.pcap", "ppp__ip6_fragments.pcap",
  "ppp__IcmpPackets.pcap", "zeek__icmp6.pcap", "ppp__ipv6_options.pcap", "ppp__ipv4-options.pcap", "zeek__vlan-qinqinq.pcap",
  "ndpi__KakaoTalk_chat.pcap", "zeek__linux_dlt_sll2.pcap", "tcpdump__quic_handshake.pcap", "zeek__truncated-header.pcap",
].flatMap((f) => readCapture(capture(f)).packets.filter((p) => p.data.length <= 2048));

test("mutated packets of real captures never trap and always get a verdict", () => {
  const mutation = fc.tuple(
    fc.nat(REAL.length - 1),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
    fc.option(fc.nat(), { nil: undefined }),
  ).map(([k, edits, cut]) => {
    const r = REAL[k];
    let data = r.data.slice();
    for (const [at, v] of edits) data[at % data.length] = v;
    if (cut !== undefined) data = data.slice(0, cut % (data.length + 1));
    return { data, link: r.link, wirelen: r.wirelen };
  });
  fc.assert(fc.property(fc.array(mutation, { minLength: 1, maxLength: 32 }), checkPackets), { numRuns: runs });
});

test("mutated valid packets never trap and always get a verdict", () => {
  fc.assert(
    fc.property(fc.array(mutated, { minLength: 1, maxLength: 32 }), (packets) => checkVerdicts(packets, [1])),
    { numRuns: runs },
  );
});
