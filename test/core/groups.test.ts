// Group membership through the library API: one target per endpoint
// (address and port) within a group, found in the core's endpoint index
// rather than by a walk of the group's targets.

import { test } from "node:test";
import assert from "node:assert/strict";
import { DataPlane } from "../../src/core/dataplane.js";
import { DataPlaneError } from "../../src/errors.js";

const exists = (e: unknown): boolean => e instanceof DataPlaneError && /already exists/.test(e.message);

test("a group refuses a second target at an endpoint it has, IPv4 and IPv6, among thousands of targets that came and went; another group takes the same endpoint; a removed target's endpoint joins again", () => {
  const n = 3000;
  const dp = DataPlane.create({ address: "198.51.100.1", address6: "2001:db8::1", capacity: { flows: 1024, groups: 8, targets: 3 * n } }, []);
  const v4 = dp.addGroup({ protocol: "udp", address: "203.0.113.10", port: 53, targets: [] });
  const v6 = dp.addGroup({ protocol: "udp", address: "2001:db8:100::10", port: 53, targets: [] });
  const other = dp.addGroup({ protocol: "udp", address: "203.0.113.11", port: 53, targets: [] });
  const addr4 = (i: number): string => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  const addr6 = (i: number): string => `2001:db8:200::${i.toString(16)}`;
  for (let i = 0; i < n; i++) {
    dp.addTarget(v4, { address: addr4(i), port: 53 });
    dp.addTarget(v6, { address: addr6(i), port: 53 });
  }
  for (let i = 0; i < n; i += 7) {
    assert.throws(() => dp.addTarget(v4, { address: addr4(i), port: 53 }), exists, `${addr4(i)}:53 twice`);
    assert.throws(() => dp.addTarget(v6, { address: addr6(i), port: 53 }), exists, `[${addr6(i)}]:53 twice`);
    dp.addTarget(v4, { address: addr4(i), port: 54 }); // another port: another endpoint
  }
  dp.addTarget(other, { address: addr4(5), port: 53 });
  // every other target leaves; their endpoints join again, the others still refuse
  for (let i = 0; i < n; i += 2) dp.removeTarget(v4, `${addr4(i)}:53`);
  for (let i = 0; i < n; i++) {
    if (i % 2 === 0) dp.addTarget(v4, { address: addr4(i), port: 53 });
    else assert.throws(() => dp.addTarget(v4, { address: addr4(i), port: 53 }), exists, `${addr4(i)}:53 after the others left`);
  }
  // a removed group's endpoints are free in a new group at the same address
  dp.removeGroup(v6);
  const again = dp.addGroup({ protocol: "udp", address: "2001:db8:100::10", port: 53, targets: [{ address: addr6(1), port: 53 }] });
  assert.throws(() => dp.addTarget(again, { address: addr6(1), port: 53 }), exists);
});
