// A standard test data plane and one-packet helpers.

import { DataPlane, type DataPlaneSettings, type GroupSpec } from "../../src/core/dataplane.js";
import type { PacketBatch } from "../../src/core/batch.js";
import { Verdict } from "../../assembly/shared/abi.js";
import { parseAddress } from "../../src/net/addr.js";

export const PROXY4 = "198.51.100.1";
export const PROXY6 = "2001:db8:ff::1";
export const TA4 = "203.0.113.10";
export const TA6 = "2001:db8:a::10";
export const bytesOf = (a: string): Uint8Array => parseAddress(a).bytes;

/** Groups on every port of TA4/TA6 for TCP and UDP, plus ICMP echo, each with two legacy targets. */
export function standardGroups(policy: GroupSpec["policy"] = "affinity", aware = false): GroupSpec[] {
  const groups: GroupSpec[] = [];
  for (const [ta, t1, t2] of [
    [TA4, "192.0.2.11", "192.0.2.12"],
    [TA6, "2001:db8:b::11", "2001:db8:b::12"],
  ]) {
    for (const protocol of ["tcp", "udp", "icmp"] as const) {
      groups.push({
        protocol,
        address: ta,
        port: 0,
        policy,
        targets: [
          { address: t1, port: protocol === "icmp" ? 0 : 8080, aware },
          { address: t2, port: 0, aware },
        ],
      });
    }
  }
  return groups;
}

export function standardDataPlane(settings: DataPlaneSettings = {}, groups = standardGroups()): DataPlane {
  return DataPlane.create(
    { address: PROXY4, address6: PROXY6, capacity: { flows: 1 << 16, groups: 64, targets: 256 }, ...settings },
    groups,
  );
}

export interface Result {
  verdict: Verdict;
  reason: number;
  aux: number;
  out: Uint8Array;
}

/** Run packets through the data plane in one batch; copies the outputs out of Wasm memory. */
export function run(dp: DataPlane, batch: PacketBatch, packets: readonly Uint8Array[], link = 101, time = 1000): Result[] {
  batch.clear();
  for (const p of packets) {
    if (!batch.add(p, { link, time })) throw new Error("batch full");
  }
  dp.process(batch);
  const results: Result[] = [];
  for (let i = 0; i < packets.length; i++) {
    results.push({ verdict: batch.verdict(i), reason: batch.reason(i), aux: batch.aux(i), out: batch.packet(i).slice() });
  }
  return results;
}
