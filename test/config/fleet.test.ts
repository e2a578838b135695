// The fleet configuration (src/config/fleet.ts): the document `pias config
// push` checks, its keys in the store, and how a proxy merges it into its file.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { fleetFromEntries, mergeFleet, validateFleet } from "../../src/config/fleet.js";
import { validateConfig } from "../../src/config/validate.js";
import { ConfigValidationError } from "../../src/config/values.js";
import { ConfigError } from "../../src/errors.js";

const KEY = "c1".repeat(16);
const NEXT = "d2".repeat(16);
const JOIN = "a7".repeat(16);
const doc = {
  groups: [
    { name: "web", protocol: "tcp", address: "198.51.100.20", port: 80, policy: "round-robin", targets: [{ address: "192.0.2.1", port: 8080, label: "eu" }], scopes: [{ prefix: "10.1.0.0/16", label: "eu" }] },
    { protocol: "udp", address: "198.51.100.21", port: 53, targets: [{ address: "192.0.2.2", port: 53 }] },
  ],
  cluster: { key: KEY, acceptKey: NEXT, groups: [{ protocol: "tcp", address: "198.51.100.10", port: 80, joinKey: JOIN, policy: "affinity" }] },
};
const local = {
  proxy: { address: "10.255.0.1", anycastPrefixes: ["198.51.100.0/24"] },
  groups: [{ protocol: "tcp", address: "198.51.100.30", port: 443, targets: [{ address: "10.8.9.9", port: 443 }] }],
  cluster: { id: "p1", key: "ee".repeat(16), acceptKey: "ff".repeat(16), store: { etcd: { endpoints: ["127.0.0.1:2379"] } } },
};

describe("fleet document", () => {
  test("each part is one store key, named by the group's name or TA; its value the part as written", () => {
    const { entries } = validateFleet(doc);
    assert.deepEqual(entries.map(([k]) => k), ["groups/web", "groups/udp 198.51.100.21:53", "cluster/key", "cluster/groups/tcp 198.51.100.10:80"]);
    assert.deepEqual(JSON.parse(entries[0][1]), doc.groups[0]);
    assert.deepEqual(JSON.parse(entries[2][1]), { key: KEY, acceptKey: NEXT });
  });

  test("entries read back to the same document (sorted by key)", () => {
    const { entries, doc: d } = validateFleet(doc);
    const back = fleetFromEntries(new Map(entries));
    assert.deepEqual(back.key, d.key);
    assert.deepEqual(back.clusterGroups, d.clusterGroups);
    assert.deepEqual(new Set(back.groups.map((g) => JSON.stringify(g))), new Set(d.groups.map((g) => JSON.stringify(g))));
  });

  test("a target at an address a proxy could have (192.0.2.1) passes: the stand-in proxy takes an address nobody uses", () => {
    assert.doesNotThrow(() => validateFleet(doc));
  });

  const bad: [string, unknown, string][] = [
    ["a wrong port, named at its place in the document", { groups: [{ protocol: "tcp", address: "198.51.100.20", port: 70000 }] }, "groups[0].port: 70000 is not in 0..65535"],
    ["a join key that is not hex", { cluster: { groups: [{ protocol: "tcp", address: "198.51.100.10", port: 80, joinKey: "nothex" }] } }, "cluster.groups[0].joinKey: must be 32 to 128 hex digits (16 to 64 bytes), e.g. from `openssl rand -hex 32`"],
    ["an accepted key with no signing key", { cluster: { acceptKey: NEXT } }, "cluster.acceptKey: only with cluster.key: the key that signs"],
    ["a proxy's own setting", { cluster: { id: "p1" } }, 'cluster: unknown key "id"'],
    ["a top-level key that is not the fleet's", { proxy: {} }, 'unknown key "proxy" at top level'],
  ];
  for (const [name, raw, message] of bad) {
    test(`refused with one line: ${name}`, () => {
      assert.throws(() => validateFleet(raw), (e: unknown) => e instanceof ConfigValidationError && e.message === message);
    });
  }

  test("entries that are not JSON or not fleet keys are refused, naming the key", () => {
    assert.throws(() => fleetFromEntries(new Map([["groups/web", "{"]])), (e: unknown) => e instanceof ConfigError && /^config\/groups\/web: not JSON/.test(e.message));
    assert.throws(() => fleetFromEntries(new Map([["proxies", "{}"]])), /config\/proxies: "proxies" is not a fleet configuration key/);
    assert.throws(() => fleetFromEntries(new Map([["cluster/key", '{"acceptKey":"aa"}']])), /config\/cluster\/key: must hold "key"/);
  });
});

describe("merging the fleet into a proxy's file", () => {
  test("the fleet's groups follow the file's, its key and accepted key replace the file's, and the proxy's own settings stay", () => {
    const c = validateConfig(mergeFleet(local, validateFleet(doc).doc));
    assert.deepEqual(c.groups.map((g) => g.name), ["tcp 198.51.100.30:443", "web", "udp 198.51.100.21:53"]);
    assert.deepEqual(c.cluster!.key, new Uint8Array(16).fill(0xc1));
    assert.deepEqual(c.cluster!.acceptKey, new Uint8Array(16).fill(0xd2));
    assert.deepEqual(c.cluster!.groups.map((g) => g.key), ["tcp 198.51.100.10:80"]);
    assert.equal(c.cluster!.id, "p1");
    assert.equal(c.cluster!.store!.etcd.endpoints[0], "http://127.0.0.1:2379");
  });

  test("a fleet key without an accepted key ends the file's rotation window too", () => {
    const c = validateConfig(mergeFleet(local, { groups: [], key: { key: KEY }, clusterGroups: [] }));
    assert.equal(c.cluster!.acceptKey, null);
  });

  test("an empty fleet leaves the file as it is", () => {
    assert.deepEqual(mergeFleet(local, fleetFromEntries(new Map())), local);
  });

  test("a group both in the file and in the fleet is refused as a duplicate", () => {
    const dup = { groups: [local.groups[0]], key: null, clusterGroups: [] };
    assert.throws(() => validateConfig(mergeFleet(local, dup)), /groups\[1\]: duplicate group tcp 198.51.100.30:443/);
  });
});
