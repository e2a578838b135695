// Fragments follow their first fragment to the same flow, and the checksum a
// first fragment could not hold is fixed in the fragment that holds it.

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { AuxFlag, Reason, Verdict } from "../../assembly/shared/abi.js";
import { buildPacket, checksumsValid, fragment, locate, packetSpec, reassemble } from "../helpers/packets.js";
import { TA4, TA6, bytesOf, run, standardDataPlane, standardGroups } from "../helpers/dataplane.js";

const runs = Number(process.env.PIAS_FUZZ_RUNS ?? 200);

const datagram = packetSpec({ minPayload: 16, maxPayload: 200 })
  .map((s) => ({ ...s, dst: bytesOf(s.family === 4 ? TA4 : TA6), tcpFlags: 0x02, extHeaders: undefined, ipOptions: undefined }));

test("every fragment of a datagram goes where its first fragment went, and the reassembled output equals the NAT of the whole datagram", () => {
  fc.assert(
    fc.property(datagram, fc.integer({ min: 1, max: 8 }), fc.boolean(), (spec, eighths, aware) => {
      const ip = buildPacket(spec);
      const frags = fragment(ip, eighths * 8);
      fc.pre(frags.length > 1);
      const groups = standardGroups("affinity", aware);
      const dp = standardDataPlane({}, groups);
      const out = run(dp, dp.createBatch(64, 64 * 1024), frags);
      for (const r of out) assert.equal(r.verdict, Verdict.Forward, `fragment dropped: reason ${r.reason}`);
      // a fresh plane with the same config picks the same target and NAT port for the same flow
      const dp2 = standardDataPlane({}, groups);
      const [single] = run(dp2, dp2.createBatch(4), [ip]);
      if (aware) {
        const outer = spec.family === 4 ? 20 : 40;
        const dsts = new Set(out.map((r) => locate(r.out).dst.join(".")));
        assert.equal(dsts.size, 1, "all fragments tunnelled to one target");
        assert.ok(out.every((r) => r.aux & AuxFlag.Encapsulated));
        assert.deepEqual(out.map((r) => r.out.subarray(outer)), frags, "inner fragments unmodified");
        return;
      }
      const joined = reassemble(out.map((r) => r.out));
      assert.deepEqual(checksumsValid(joined), { ip: true, l4: true, quoted: true });
      assert.deepEqual(joined, single.out);
    }),
    { numRuns: runs },
  );
});

test("a later fragment that arrives before its first fragment is dropped as fragment-out-of-order", () => {
  const dp = standardDataPlane();
  const ip = buildPacket({ family: 4, proto: "udp", src: bytesOf("10.0.0.1"), dst: bytesOf(TA4), sport: 5000, dport: 53, payload: new Uint8Array(64) });
  const frags = fragment(ip, 24);
  const rs = run(dp, dp.createBatch(8), [frags[1], frags[0], frags[2]]);
  assert.deepEqual(rs.map((r) => r.verdict), [Verdict.Drop, Verdict.Forward, Verdict.Forward]);
  assert.equal(rs[0].reason, Reason.FragmentOutOfOrder);
  assert.equal(dp.counters().drops["fragment-out-of-order"], 1);
});
