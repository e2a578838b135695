// The `overlay` section (src/config/overlay.ts): defaults, and a one-line
// error naming the path for every invalid value.

import { test } from "node:test";
import assert from "node:assert/strict";
import { validateConfig } from "../../src/config/validate.js";
import { ConfigValidationError } from "../../src/config/values.js";
import { formatAddress } from "../../src/net/addr.js";

const KEY = "0e".repeat(32);
const base = (overlay: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  proxy: { address: "10.255.0.1", anycastPrefixes: ["198.51.100.0/24"] },
  cluster: { id: "n1", key: "c1".repeat(32), seeds: ["10.255.0.2", "10.255.0.3"] },
  overlay: { prefixes: ["203.0.113.0/24"], key: KEY, ...overlay },
  ...extra,
});

test("an overlay section gets its defaults, its discovery group and the cluster's seeds", () => {
  const o = validateConfig(base({})).overlay!;
  assert.deepEqual(o.prefixes, ["203.0.113.0/24"]);
  assert.deepEqual(o.ports, [1024, 65535]);
  assert.equal(o.blockPorts, 256);
  assert.equal(o.blocks, 256 * 252);
  assert.equal(o.port, 7480);
  assert.deepEqual([o.windowSeconds, o.cacheSeconds, o.flows, o.destinations], [30, 30, 262144, 65536]);
  assert.deepEqual(o.seeds, ["10.255.0.2", "10.255.0.3"]);
  assert.deepEqual([o.group.protocol, formatAddress(o.group.address), o.group.port], ["udp", "203.0.113.0", 7480]);
  assert.equal(o.key.length, 32);
  assert.equal(validateConfig({}).overlay, null);
});

const cases: [string, unknown, string][] = [
  ["no cluster", { proxy: { address: "10.255.0.1" }, overlay: { prefixes: ["203.0.113.0/24"], key: KEY } },
    "overlay: needs a cluster section: overlay nodes are PIAS proxies (membership, discovery, the cluster key)"],
  ["no prefixes", base({ prefixes: undefined }), `overlay.prefixes: required: the overlay's TA space, e.g. ["203.0.113.0/24"]`],
  ["an IPv6 prefix", base({ prefixes: ["2001:db8::/64"] }), "overlay.prefixes[0]: 2001:db8::/64 is IPv6: the overlay is IPv4 only"],
  ["a prefix overlapping the anycast prefixes", base({ prefixes: ["198.51.100.128/25"] }),
    "overlay.prefixes[0]: 198.51.100.128/25 overlaps proxy.anycastPrefixes 198.51.100.0/24: the overlay's TAs are its own"],
  ["two overlapping prefixes", base({ prefixes: ["203.0.113.0/24", "203.0.113.16/28"] }), "overlay.prefixes[1]: overlaps prefixes[0]"],
  ["too many blocks", base({ prefixes: ["10.0.0.0/12"] }),
    "overlay.blockPorts: the TA space has 264241152 blocks of 256 ports, at most 1048576: use smaller prefixes or larger blocks"],
  ["the control port", base({ port: 7470 }), "overlay.port: 7470 is cluster.controlPort: frames and control messages need their own ports"],
  ["a short key", base({ key: "0e0e" }), "overlay.key: must be 32 to 128 hex digits (16 to 64 bytes), e.g. from `openssl rand -hex 32`"],
  ["ports reversed", base({ ports: [3000, 2000] }), "overlay.ports: min 3000 is greater than max 2000"],
  ["an unknown key", base({ cache: 3 }), `overlay: unknown key "cache"`],
];
for (const [name, raw, message] of cases) {
  test(`an overlay with ${name} is refused: ${message}`, () => {
    const clean = JSON.parse(JSON.stringify(raw)); // drops keys set to undefined
    assert.throws(() => validateConfig(clean), (e: unknown) => e instanceof ConfigValidationError && e.message === message);
  });
}

test("with a bgp section, an overlay node announces the overlay's prefixes beside its anycast prefixes", () => {
  const c = validateConfig(base({}, { bgp: { localAs: 65001, neighbors: [{ address: "10.0.0.1", as: 65000 }] } }));
  assert.deepEqual(c.bgp!.announce.map((a) => a.prefix), ["198.51.100.0/24", "203.0.113.0/24"]);
  const picked = validateConfig(base({}, { bgp: { localAs: 65001, neighbors: [{ address: "10.0.0.1", as: 65000 }], announce: ["203.0.113.0/25"] } }));
  assert.deepEqual(picked.bgp!.announce.map((a) => a.prefix), ["203.0.113.0/25"]);
});
