// Path MTU through the proxy's tunnels: a packet that no longer fits once
// encapsulated is answered with the MTU its sender must use.

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { AuxFlag, Verdict } from "../../assembly/shared/abi.js";
import { buildPacket, checksumsValid, get16, locate, packetSpec, withEthernet } from "../helpers/packets.js";
import { PROXY4, PROXY6, TA4, TA6, bytesOf, run, standardDataPlane, standardGroups } from "../helpers/dataplane.js";

const runs = Number(process.env.PIAS_FUZZ_RUNS ?? 200);
const MTU = 1280;

const big = packetSpec({ minPayload: 1100, maxPayload: 1400 })
  .map((s) => ({ ...s, dst: bytesOf(s.family === 4 ? TA4 : TA6), tcpFlags: 0x02 }));

test("a packet too big for the tunnel with DF (or any IPv6 packet) gets fragmentation-needed / packet-too-big with the tunnel's path MTU, and every checksum verifies", () => {
  fc.assert(
    fc.property(big, fc.integer({ min: 0, max: 2 }), (spec, tags) => {
      const dp = standardDataPlane({ tunnelMtu: MTU }, standardGroups("affinity", true));
      const ip = buildPacket({ ...spec, df: true });
      const frame = withEthernet(ip, tags);
      const [r] = run(dp, dp.createBatch(4), [frame], 1);
      const outer = spec.family === 4 ? 20 : 40;
      if (ip.length + outer <= MTU) {
        assert.ok(r.aux & AuxFlag.Encapsulated, "fits: tunnelled");
        return;
      }
      assert.equal(r.verdict, Verdict.Forward);
      assert.ok(r.aux & AuxFlag.Generated);
      const hdr = frame.length - ip.length;
      const icmp = r.out.subarray(hdr);
      const L = locate(icmp);
      assert.equal(L.proto, spec.family === 4 ? 1 : 58);
      assert.deepEqual(L.src, bytesOf(spec.family === 4 ? PROXY4 : PROXY6), "from the proxy");
      assert.deepEqual(L.dst, spec.src, "to the sender");
      assert.deepEqual([icmp[L.l4], icmp[L.l4 + 1]], spec.family === 4 ? [3, 4] : [2, 0]);
      const mtu = spec.family === 4 ? get16(icmp, L.l4 + 6) : (get16(icmp, L.l4 + 4) << 16) | get16(icmp, L.l4 + 6);
      assert.equal(mtu, MTU - outer, "the MTU left inside the tunnel");
      assert.ok(icmp.length <= (spec.family === 4 ? 576 : 1280));
      const quote = icmp.subarray(L.l4 + 8);
      assert.deepEqual(quote, ip.subarray(0, quote.length), "quotes the packet as it was sent");
      assert.deepEqual(checksumsValid(icmp).ip && checksumsValid(icmp).l4, true);
      assert.deepEqual(r.out.subarray(0, 6), frame.subarray(6, 12), "Ethernet addresses swapped: back toward the sender");
      const c = dp.counters();
      assert.equal(c.drops["packet-too-big"], 1);
      assert.equal(c.icmpGenerated, 1);
      assert.equal(c.forwarded + c.dropped, c.packets);
    }),
    { numRuns: runs },
  );
});

test("an IPv4 packet without DF too big for the tunnel is still tunnelled (the path may fragment it)", () => {
  const dp = standardDataPlane({ tunnelMtu: MTU }, standardGroups("affinity", true));
  const ip = buildPacket({ family: 4, proto: "udp", src: bytesOf("10.0.0.1"), dst: bytesOf(TA4), sport: 1, dport: 53, payload: new Uint8Array(1400), df: false });
  const [r] = run(dp, dp.createBatch(4), [ip]);
  assert.ok(r.aux & AuxFlag.Encapsulated);
  assert.equal(r.out.length, ip.length + 20);
  assert.equal(get16(r.out, 6) & 0x4000, 0, "outer DF stays clear");
});
