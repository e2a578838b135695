// Properties of NAT, tunnelling and ICMP error translation in the Wasm core,
// checked against full checksum recomputation in plain TypeScript.

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { AuxFlag, Reason, Verdict } from "../../assembly/shared/abi.js";
import { onesSum, pseudoHeaderSum } from "../../src/net/checksum.js";
import type { GroupSpec } from "../../src/core/dataplane.js";
import {
  buildIcmpError, buildPacket, checksumsValid, get16, l4ChecksumOffset, locate, packetSpec, withEthernet,
  type PacketSpec,
} from "../helpers/packets.js";
import { PROXY4, PROXY6, TA4, TA6, bytesOf, run, standardDataPlane, standardGroups } from "../helpers/dataplane.js";

const runs = Number(process.env.PIAS_FUZZ_RUNS ?? 300);
const params = { numRuns: runs };

const ta = (family: 4 | 6): Uint8Array => bytesOf(family === 4 ? TA4 : TA6);
const proxy = (family: 4 | 6): Uint8Array => bytesOf(family === 4 ? PROXY4 : PROXY6);

/** Packets from clients to the standard groups, TCP ones opening connections. */
const toGroup = (o: { family?: 4 | 6; proto?: "tcp" | "udp" | "icmp"; maxPayload?: number } = {}): fc.Arbitrary<PacketSpec> =>
  packetSpec(o)
    .map((s) => ({ ...s, dst: ta(s.family), tcpFlags: 0x02 }))
    .filter((s) => !equalBytes(s.src, proxy(s.family)) && !equalBytes(s.src, ta(s.family)));

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Offsets a NAT rewrite may change: addresses, ports or ICMP identifier, and the checksums. */
function rewritable(ip: Uint8Array): Set<number> {
  const L = locate(ip);
  const s = new Set<number>();
  const add = (from: number, n: number): void => {
    for (let i = 0; i < n; i++) s.add(from + i);
  };
  if (L.family === 4) add(10, 10);
  else add(8, 32);
  if (L.proto === 6 || L.proto === 17) add(L.l4, 4);
  else add(L.l4 + 4, 2);
  add(l4ChecksumOffset(L.proto === 6 ? "tcp" : L.proto === 17 ? "udp" : "icmp", L.l4), 2);
  return s;
}

/** The reply a target would send: addresses and ports swapped; an echo request answered by a reply. */
function replyOf(ip: Uint8Array): Uint8Array {
  const r = ip.slice();
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
    toggleEcho(r, L.l4, L.family);
  }
  return r;
}

/** Turn an echo request into a reply or back, fixing the checksum incrementally. */
function toggleEcho(r: Uint8Array, l4: number, family: 4 | 6): void {
  const [req, rep] = family === 4 ? [8, 0] : [128, 129];
  const old = get16(r, l4);
  r[l4] = r[l4] === req ? rep : req;
  const nw = get16(r, l4);
  let c = (~get16(r, l4 + 2) & 0xffff) + (~old & 0xffff) + nw;
  while (c > 0xffff) c = (c & 0xffff) + (c >>> 16);
  c = ~c & 0xffff;
  r[l4 + 2] = c >>> 8;
  r[l4 + 3] = c & 0xff;
}

test("after NAT every IPv4/TCP/UDP/ICMP/ICMPv6 checksum verifies by full recomputation and only rewritten fields and checksums change", () => {
  const dp = standardDataPlane();
  const batch = dp.createBatch(4);
  fc.assert(
    fc.property(toGroup(), fc.integer({ min: 0, max: 3 }), (spec, tags) => {
      const ip = buildPacket(spec);
      const frame = withEthernet(ip, tags);
      const [r] = run(dp, batch, [frame], 1);
      assert.equal(r.verdict, Verdict.Forward, `dropped: reason ${r.reason}`);
      assert.ok(r.aux & AuxFlag.ToTarget);
      const hdr = frame.length - ip.length;
      assert.deepEqual(r.out.subarray(0, hdr), frame.subarray(0, hdr), "link-layer header unchanged");
      const out = r.out.subarray(hdr);
      assert.equal(out.length, ip.length);
      assert.deepEqual(checksumsValid(out), { ip: true, l4: true, quoted: true });
      const allowed = rewritable(ip);
      for (let i = 0; i < ip.length; i++) {
        if (!allowed.has(i)) assert.equal(out[i], ip[i], `byte ${i} changed`);
      }
      assert.deepEqual(locate(out).src, proxy(spec.family), "source is the proxy");
    }),
    params,
  );
});

test("forward rewrite then reverse rewrite restores the original packet byte for byte", () => {
  const dp = standardDataPlane();
  const batch = dp.createBatch(4);
  fc.assert(
    fc.property(toGroup(), (spec) => {
      const ip = buildPacket(spec);
      const [fwd] = run(dp, batch, [ip]);
      assert.equal(fwd.verdict, Verdict.Forward);
      const [rev] = run(dp, batch, [replyOf(fwd.out)]);
      assert.equal(rev.verdict, Verdict.Forward, `reply dropped: reason ${rev.reason}`);
      assert.equal(rev.aux & AuxFlag.ToTarget, 0);
      assert.deepEqual(replyOf(rev.out), ip);
    }),
    params,
  );
});

/** Ones' complement "error" of a checksummed region: 0 when it verifies. */
function residue(sum: number): number {
  return sum === 0xffff || sum === 0 ? 0 : sum;
}

function l4Residue(ip: Uint8Array): number {
  const L = locate(ip);
  const end = L.family === 4 ? get16(ip, 2) : 40 + get16(ip, 4);
  const pseudo = L.proto === 1 ? 0 : pseudoHeaderSum(L.src, L.dst, L.proto, end - L.l4);
  return residue(onesSum(ip, L.l4, end, pseudo));
}

test("a checksum that was wrong on input stays wrong by exactly the same amount", () => {
  const dp = standardDataPlane();
  const batch = dp.createBatch(4);
  fc.assert(
    fc.property(
      toGroup().filter((s) => !s.udpNoChecksum),
      fc.integer({ min: 1, max: 0xfffe }),
      fc.integer({ min: 1, max: 0xfffe }),
      (spec, e1, e2) => {
        const ip = buildPacket(spec);
        const L = locate(ip);
        const at = l4ChecksumOffset(spec.proto, L.l4);
        const put = (o: number, v: number): void => { ip[o] = v >>> 8; ip[o + 1] = v & 0xff; };
        put(at, (get16(ip, at) + e1) & 0xffff);
        fc.pre(!(spec.proto === "udp" && get16(ip, at) === 0)); // a UDP checksum of 0 means "none": not a wrong one
        if (spec.family === 4) put(10, (get16(ip, 10) + e2) & 0xffff);
        const before = { l4: l4Residue(ip), ip: spec.family === 4 ? residue(onesSum(ip, 0, L.l4)) : 0 };
        const [r] = run(dp, batch, [ip]);
        assert.equal(r.verdict, Verdict.Forward);
        const after = { l4: l4Residue(r.out), ip: spec.family === 4 ? residue(onesSum(r.out, 0, L.l4)) : 0 };
        assert.deepEqual(after, before);
      },
    ),
    params,
  );
});

test("with verifyChecksums on, a packet with a wrong checksum is dropped and counted", () => {
  const dp = standardDataPlane({ verifyChecksums: true });
  const batch = dp.createBatch(4);
  const good = buildPacket({ family: 4, proto: "udp", src: bytesOf("10.0.0.1"), dst: ta(4), sport: 1000, dport: 53, payload: new Uint8Array(10) });
  const badL4 = good.slice();
  badL4[27] ^= 1;
  const badIp = good.slice();
  badIp[11] ^= 1;
  const rs = run(dp, batch, [good, badL4, badIp]);
  assert.deepEqual(rs.map((r) => r.verdict), [Verdict.Forward, Verdict.Drop, Verdict.Drop]);
  assert.deepEqual(rs.map((r) => r.reason), [0, Reason.BadL4Checksum, Reason.BadIpChecksum]);
  assert.deepEqual(dp.counters().drops, { "bad-l4-checksum": 1, "bad-ip-checksum": 1 });
});

test("with verifyChecksums on, a packet of any length and alignment is forwarded when its checksums verify and dropped as bad-l4-checksum when a byte of its payload changed (the core's SIMD sums against RFC 1071)", () => {
  const dp = standardDataPlane({ verifyChecksums: true });
  const batch = dp.createBatch(4);
  fc.assert(
    fc.property(
      toGroup({ maxPayload: 3000 }),
      fc.option(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 }))),
      fc.integer({ min: 0, max: 2 }),
      (spec, change, vlanTags) => {
        const ip = buildPacket(spec);
        const n = spec.payload.length;
        if (change && n > 0) ip[ip.length - n + (change[0] % n)] ^= change[1];
        const changed = change !== null && n > 0;
        assert.deepEqual(checksumsValid(ip).l4, !changed || spec.udpNoChecksum === true); // (one byte changed never keeps a sum)
        // Ethernet and VLAN tags in front move the headers' alignment (IPv4 options and IPv6 extensions too)
        const [r] = run(dp, batch, [withEthernet(ip, vlanTags)], 1);
        if (changed && !spec.udpNoChecksum) {
          assert.equal(r.verdict, Verdict.Drop);
          assert.equal(r.reason, Reason.BadL4Checksum);
        } else {
          assert.equal(r.verdict, Verdict.Forward, `reason ${r.reason}`);
        }
      },
    ),
    params,
  );
});

test("an ICMP error about a NATed packet names the client's flow afterwards and every checksum verifies", () => {
  const dp = standardDataPlane();
  const batch = dp.createBatch(4);
  fc.assert(
    fc.property(toGroup(), fc.boolean(), (spec, wholeQuote) => {
      const ip = buildPacket(spec);
      const [fwd] = run(dp, batch, [ip]);
      assert.equal(fwd.verdict, Verdict.Forward);
      const router = spec.family === 4 ? bytesOf("192.0.2.254") : bytesOf("2001:db8:b::fe");
      const L = locate(fwd.out);
      const quoted = wholeQuote ? fwd.out : fwd.out.subarray(0, L.l4 + 8);
      const [type, code] = spec.family === 4 ? [3, 4] : [2, 0];
      const err = buildIcmpError(spec.family, router, proxy(spec.family), type, code, quoted, 1400);
      const [r] = run(dp, batch, [err]);
      assert.equal(r.verdict, Verdict.Forward, `error dropped: reason ${r.reason}`);
      assert.ok(r.aux & AuxFlag.IcmpError);
      const O = locate(r.out);
      assert.deepEqual(O.dst, spec.src, "the error goes to the client");
      assert.deepEqual(O.src, router, "the error still comes from the router");
      const q = r.out.subarray(O.l4 + 8);
      const Q = locate(q);
      assert.deepEqual(Q.src, spec.src, "quote source is the client");
      assert.deepEqual(Q.dst, ta(spec.family), "quote destination is the TA");
      if (spec.proto === "icmp") {
        assert.equal(get16(q, Q.l4 + 4), spec.sport, "quoted echo identifier is the client's");
      } else {
        assert.equal(get16(q, Q.l4), spec.sport);
        assert.equal(get16(q, Q.l4 + 2), spec.dport);
      }
      assert.deepEqual(checksumsValid(r.out), { ip: true, l4: true, quoted: true });
      if (wholeQuote) assert.deepEqual(q, ip, "a whole quote becomes the client's original packet");
    }),
    params,
  );
});

test("an ICMP error from the client side about a reply reaches the target quoting its own packet", () => {
  const dp = standardDataPlane();
  const batch = dp.createBatch(4);
  fc.assert(
    fc.property(toGroup(), (spec) => {
      const ip = buildPacket(spec);
      const [fwd] = run(dp, batch, [ip]);
      const reply = replyOf(fwd.out); // T:t -> P:x
      const [rev] = run(dp, batch, [reply]); // becomes A:g -> C:c
      assert.equal(rev.verdict, Verdict.Forward);
      const router = spec.family === 4 ? bytesOf("10.255.0.1") : bytesOf("2001:db8:c::1");
      const err = buildIcmpError(spec.family, router, ta(spec.family), spec.family === 4 ? 3 : 1, 3, rev.out);
      const [r] = run(dp, batch, [err]);
      assert.equal(r.verdict, Verdict.Forward, `error dropped: reason ${r.reason}`);
      const O = locate(r.out);
      const q = r.out.subarray(O.l4 + 8);
      assert.deepEqual(O.dst, locate(fwd.out).dst, "the error goes to the target");
      assert.deepEqual(q, reply, "the quote is the target's own reply");
      assert.deepEqual(checksumsValid(r.out), { ip: true, l4: true, quoted: true });
    }),
    params,
  );
});

test("encapsulate then decapsulate is the identity on the inner packet and the link header", () => {
  const aware = standardDataPlane({}, standardGroups("affinity", true));
  // A second proxy reached by the tunnel: it decapsulates (its address is the
  // aware target's) and tunnels the same inner packet on to its own target.
  const batchA = aware.createBatch(4);
  fc.assert(
    fc.property(toGroup(), fc.integer({ min: 0, max: 2 }), (spec, tags) => {
      const ip = buildPacket(spec);
      const frame = withEthernet(ip, tags);
      const hdr = frame.length - ip.length;
      const [enc] = run(aware, batchA, [frame], 1);
      assert.equal(enc.verdict, Verdict.Forward);
      assert.ok(enc.aux & AuxFlag.Encapsulated);
      const outer = spec.family === 4 ? 20 : 40;
      assert.equal(enc.out.length, frame.length + outer);
      assert.deepEqual(enc.out.subarray(0, hdr), frame.subarray(0, hdr));
      assert.deepEqual(enc.out.subarray(hdr + outer), ip, "inner packet unmodified");
      const O = locate(enc.out.subarray(hdr));
      assert.equal(O.proto, spec.family === 4 ? 4 : 41);
      assert.deepEqual(O.src, proxy(spec.family));
      if (spec.family === 4) assert.equal(onesSum(enc.out, hdr, hdr + 20), 0xffff, "outer IPv4 header checksum verifies");
      assert.equal(spec.family === 4 ? get16(enc.out, hdr + 2) : get16(enc.out, hdr + 4) + 40, ip.length + outer);

      const jap = standardDataPlane(
        { address: spec.family === 4 ? formatV4(O.dst) : PROXY4, address6: spec.family === 6 ? formatV6(O.dst) : PROXY6 },
        standardGroups("affinity", true),
      );
      const batchJ = jap.createBatch(4);
      const [dec] = run(jap, batchJ, [enc.out], 1);
      assert.equal(dec.verdict, Verdict.Forward, `dropped: reason ${dec.reason}`);
      assert.ok(dec.aux & AuxFlag.Decapsulated);
      assert.deepEqual(dec.out.subarray(0, hdr), frame.subarray(0, hdr));
      assert.deepEqual(dec.out.subarray(hdr + outer), ip, "inner packet still unmodified");
    }),
    { numRuns: Math.min(runs, 100) },
  );
});

function formatV4(b: Uint8Array): string {
  return [...b].join(".");
}

function formatV6(b: Uint8Array): string {
  const parts: string[] = [];
  for (let i = 0; i < 16; i += 2) parts.push(((b[i] << 8) | b[i + 1]).toString(16));
  return parts.join(":");
}

test("under every policy, every packet of a flow goes to the same target and NAT port, and live flows never share a binding", () => {
  fc.assert(
    fc.property(
      fc.array(toGroup({ proto: "udp" }), { minLength: 1, maxLength: 40 }),
      fc.array(fc.nat(), { minLength: 20, maxLength: 120 }),
      fc.constantFrom<NonNullable<GroupSpec["policy"]>>("affinity", "round-robin", "random", "least-load", "proximity"),
      (flows, picks, policy) => {
        const dp = standardDataPlane({}, standardGroups(policy));
        const batch = dp.createBatch(8);
        const binding = new Map<string, string>();
        for (const p of picks) {
          const spec = flows[p % flows.length];
          const [r] = run(dp, batch, [buildPacket(spec)]);
          assert.equal(r.verdict, Verdict.Forward);
          const O = locate(r.out);
          const b = `${O.family} ${O.proto} ${O.dst.join(".")} ${get16(r.out, O.l4 + 2)} ${get16(r.out, O.l4)}`;
          const key = `${spec.family} ${spec.src.join(".")} ${spec.sport} ${spec.dport}`;
          const seen = binding.get(key);
          if (seen !== undefined) assert.equal(b, seen, "same flow, same binding");
          binding.set(key, b);
        }
        const all = [...binding.values()];
        assert.equal(new Set(all).size, all.length, "no two flows share a binding");
      },
    ),
    { numRuns: Math.min(runs, 100) },
  );
});
