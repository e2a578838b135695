// Target selection observed through the packets the core forwards: a data
// plane with one UDP group, the target each client's new flow reaches, and
// what a target leaving changes. Shared by test/properties/selection.test.ts
// and bench/selection.ts.

import assert from "node:assert/strict";
import { DataPlane, type GroupSpec, type TargetSpec } from "../../src/core/dataplane.js";
import { Verdict } from "../../assembly/shared/abi.js";
import { buildPacket, locate } from "./packets.js";
import { PROXY4, TA4, bytesOf } from "./dataplane.js";

export function plane(policy: GroupSpec["policy"], targets: TargetSpec[], affinity: "client" | "flow" = "client"): { dp: DataPlane; key: string } {
  const dp = new DataPlane({ address: PROXY4, capacity: { flows: 1 << 18, groups: 4, targets: 4096 }, randomSeed: 7 });
  const key = dp.addGroup({ protocol: "udp", address: TA4, port: 53, policy, affinity, targets });
  return { dp, key };
}

export const targetList = (n: number, weight = (_: number) => 1): TargetSpec[] =>
  Array.from({ length: n }, (_, i) => ({ address: `192.0.${2 + (i >> 8)}.${i & 255}`, port: 5353, weight: weight(i) }));

function client(i: number): Uint8Array {
  return new Uint8Array([10, (i >> 16) & 255, (i >> 8) & 255, i & 255]);
}

/** The target each client's new flow goes to (sport distinguishes rounds so every flow is new). */
export function assign(dp: DataPlane, clients: number, sport: number, time = 1000): string[] {
  const batch = dp.createBatch(512, 512 * 256);
  const out: string[] = [];
  for (let start = 0; start < clients; start += 512) {
    batch.clear();
    const n = Math.min(512, clients - start);
    for (let i = 0; i < n; i++) {
      const p = buildPacket({ family: 4, proto: "udp", src: client(start + i), dst: bytesOf(TA4), sport, dport: 53, payload: new Uint8Array(4) });
      batch.add(p, { time });
    }
    dp.process(batch);
    for (let i = 0; i < n; i++) {
      assert.equal(batch.verdict(i), Verdict.Forward, `reason ${batch.reason(i)}`);
      out.push(locate(batch.packet(i)).dst.join("."));
    }
  }
  return out;
}

export function counts(xs: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const x of xs) m.set(x, (m.get(x) ?? 0) + 1);
  return m;
}

/** Clients' targets before and after one of n targets leaves. */
export function removal(n: number, pick: number, clients: number): { before: string[]; after: string[]; gone: string } {
  const targets = targetList(n);
  const { dp, key } = plane("affinity", targets);
  const before = assign(dp, clients, 1000);
  const gone = targets[pick % n];
  dp.removeTarget(key, `${gone.address}:${gone.port}`);
  // after the UDP timeout: the first pass's NAT bindings are free again
  return { before, after: assign(dp, clients, 1001, 1000 + 301), gone: gone.address };
}
