// A configuration that serves a real capture: every destination address the
// core parses in it gets a port-0 TCP group, a port-0 UDP group and an ICMP
// group, each with two targets (the second PIAS-aware), so that the capture's
// packets take the proxy's NAT and tunnel paths rather than being dropped as
// not-for-proxy. The same idea as groupsFor() in test/replay/captures.test.ts.
// Multicast, broadcast and unspecified destinations cannot be groups (the
// config validator refuses them); their packets stay not-for-proxy drops.

import { Layout } from "../../assembly/shared/abi.js";
import { DataPlane, type GroupSpec } from "../../src/core/dataplane.js";
import { formatAddress } from "../../src/net/addr.js";
import { validateConfig } from "../../src/config/validate.js";

const SLOTS = 256;

export const PROXY = { address: "198.51.100.1", address6: "2001:db8:ff::1" } as const;
const TARGETS4 = ["192.0.2.11", "192.0.2.12"];
const TARGETS6 = ["2001:db8:b::11", "2001:db8:b::12"];

/** What the config validator accepts as a group address (src/config/values.ts, notUnicast). */
function unicast(b: Uint8Array): boolean {
  if (b.every((x) => x === 0)) return false;
  if (b.length === 4) return !(b[0] >= 224 && b[0] <= 239) && !b.every((x) => x === 255);
  return b[0] !== 0xff;
}

/** Destination addresses (with their family) of every packet of `path` the core parses as TCP, UDP or ICMP. */
export function destinations(path: string): Map<string, 4 | 6> {
  const probe = new DataPlane({ capacity: { flows: 16, groups: 1, targets: 1 } });
  const arenaBytes = Layout.MAX_PACKET + SLOTS * 2048;
  const batch = probe.createBatch(SLOTS, arenaBytes);
  const reader = probe.openCaptureReader(path);
  const seen = new Map<string, 4 | 6>();
  try {
    for (;;) {
      const n = reader.readBatch(batch.desc, SLOTS, batch.arena, arenaBytes);
      if (n === 0) break;
      for (const v of probe.inspect(batch.desc, n)) {
        if (v.reason !== 0 || (v.family !== 4 && v.family !== 6)) continue;
        if (v.proto !== 6 && v.proto !== 17 && v.proto !== 1 && v.proto !== 58) continue;
        if (!unicast(v.dst)) continue;
        const dst = formatAddress(v.dst);
        if (dst !== PROXY.address && dst !== PROXY.address6) seen.set(dst, v.family);
      }
    }
  } finally {
    reader.close();
  }
  return seen;
}

/** The groups serving every destination of `path` (see the file comment). */
export function captureGroups(path: string): GroupSpec[] {
  const groups: GroupSpec[] = [];
  for (const [address, family] of destinations(path)) {
    const t = family === 4 ? TARGETS4 : TARGETS6;
    const targets = [{ address: t[0] }, { address: t[1], aware: true }];
    groups.push({ protocol: "tcp", address, port: 0, policy: "affinity", targets });
    groups.push({ protocol: "udp", address, port: 0, policy: "affinity", targets });
    groups.push({ protocol: "icmp", address, policy: "affinity", targets });
  }
  return groups;
}

/** A complete configuration (the JSON `pias replay --config` reads) for `path`. */
export function captureConfig(path: string): object {
  const groups = captureGroups(path);
  const config = {
    proxy: { ...PROXY },
    capacity: { flows: 1 << 16, groups: groups.length + 1, targets: 2 * groups.length + 2 },
    groups,
  };
  validateConfig(config); // fail here, with the config's path in the message, rather than in the replay child
  return config;
}
