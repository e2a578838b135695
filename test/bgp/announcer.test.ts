// When a prefix is announced: the decision from the configured groups and
// their targets' health, and the announcer's states through reloads and the
// shutdown (graceful, then withdrawn).

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { validateConfig } from "../../src/config/validate.js";
import type { BgpPrefixConfig } from "../../src/config/bgp.js";
import { Announcer, decidePrefix, type TargetUp } from "../../src/bgp/announcer.js";

const HEALTH = { check: "tcp" };
const config = validateConfig({
  proxy: { address: "10.255.0.1", anycastPrefixes: ["203.0.113.0/24", "198.51.100.0/24", "192.0.2.0/24"] },
  groups: [
    // 203.0.113.0/24: two checked groups
    { protocol: "tcp", address: "203.0.113.10", port: 80, targets: [{ address: "10.2.0.1", port: 8080 }, { address: "10.2.0.2", port: 8080 }], health: HEALTH },
    { protocol: "udp", address: "203.0.113.11", port: 53, targets: [{ address: "10.2.0.3", port: 53 }], health: HEALTH },
    // 198.51.100.0/24: one checked group, one unchecked with a target
    { protocol: "tcp", address: "198.51.100.10", port: 80, targets: [{ address: "10.3.0.1", port: 80 }], health: HEALTH },
    { protocol: "tcp", address: "198.51.100.11", port: 80, targets: [{ address: "10.3.0.2", port: 80 }] },
    // 192.0.2.0/24: no group checked
    { protocol: "tcp", address: "192.0.2.10", port: 80, targets: [] },
  ],
});
const groups = config.groups;
const P = (prefix: string, withdrawWhenNoTargets = true): BgpPrefixConfig => ({ prefix, family: 4, withdrawWhenNoTargets });
const down = (...targets: [string, string][]): TargetUp[] => {
  const all: [string, string][] = [
    ["tcp 203.0.113.10:80", "10.2.0.1:8080"], ["tcp 203.0.113.10:80", "10.2.0.2:8080"], ["udp 203.0.113.11:53", "10.2.0.3:53"], ["tcp 198.51.100.10:80", "10.3.0.1:80"],
  ];
  return all.map(([group, target]) => ({ group, target, up: !targets.some(([g, t]) => g === group && t === target) }));
};

describe("decidePrefix", () => {
  const rows: [string, BgpPrefixConfig, TargetUp[], "announced" | "withdrawn"][] = [
    ["all targets up", P("203.0.113.0/24"), down(), "announced"],
    ["one target of one checked group up", P("203.0.113.0/24"), down(["tcp 203.0.113.10:80", "10.2.0.1:8080"], ["udp 203.0.113.11:53", "10.2.0.3:53"]), "announced"],
    ["every target of every checked group down", P("203.0.113.0/24"), down(["tcp 203.0.113.10:80", "10.2.0.1:8080"], ["tcp 203.0.113.10:80", "10.2.0.2:8080"], ["udp 203.0.113.11:53", "10.2.0.3:53"]), "withdrawn"],
    ["every target down, but withdrawWhenNoTargets: false", P("203.0.113.0/24", false), down(["tcp 203.0.113.10:80", "10.2.0.1:8080"], ["tcp 203.0.113.10:80", "10.2.0.2:8080"], ["udp 203.0.113.11:53", "10.2.0.3:53"]), "announced"],
    ["the checked group down, an unchecked group with a target beside it", P("198.51.100.0/24"), down(["tcp 198.51.100.10:80", "10.3.0.1:80"]), "announced"],
    ["no checked group in the prefix", P("192.0.2.0/24"), down(), "announced"],
    ["no group at all in the prefix (a cluster IAP's prefix)", P("10.99.0.0/16"), down(), "announced"],
    ["no health reported yet for a checked group: not up", P("203.0.113.0/24"), [], "withdrawn"],
    ["a narrower prefix holding only a down group", P("203.0.113.10/32"), down(["tcp 203.0.113.10:80", "10.2.0.1:8080"], ["tcp 203.0.113.10:80", "10.2.0.2:8080"]), "withdrawn"],
  ];
  for (const [name, prefix, health, state] of rows) {
    test(`${name}: ${state}`, () => assert.equal(decidePrefix(prefix, groups, health).state, state));
  }

  test("property: with withdrawWhenNoTargets, a prefix of checked groups is announced exactly when one of their targets is up", () => {
    const targets = down().filter((h) => h.group.includes("203.0.113."));
    fc.assert(fc.property(fc.array(fc.boolean(), { minLength: targets.length, maxLength: targets.length }), (ups) => {
      const health = targets.map((t, i) => ({ ...t, up: ups[i] }));
      assert.equal(decidePrefix(P("203.0.113.0/24"), groups, health).state, ups.some(Boolean) ? "announced" : "withdrawn");
    }));
  });
});

describe("Announcer", () => {
  test("withdrawn prefixes are not news at start; a health change flips only its prefix", () => {
    const a = new Announcer();
    assert.equal(a.update([P("203.0.113.0/24"), P("192.0.2.0/24")], groups, down()), true);
    assert.deepEqual(a.states(), new Map([["203.0.113.0/24", "announced"], ["192.0.2.0/24", "announced"]]));
    assert.equal(a.update([P("203.0.113.0/24"), P("192.0.2.0/24")], groups, down()), false, "nothing changed");
    const allDown = down(["tcp 203.0.113.10:80", "10.2.0.1:8080"], ["tcp 203.0.113.10:80", "10.2.0.2:8080"], ["udp 203.0.113.11:53", "10.2.0.3:53"]);
    assert.equal(a.update([P("203.0.113.0/24"), P("192.0.2.0/24")], groups, allDown), true);
    assert.deepEqual(a.states(), new Map([["203.0.113.0/24", "withdrawn"], ["192.0.2.0/24", "announced"]]));
    assert.equal(a.decisions().get("203.0.113.0/24")!.reason, "no target of its groups is up");
  });

  test("a reload that drops a prefix withdraws it until it is forgotten; one that adds a prefix announces it", () => {
    const a = new Announcer();
    a.update([P("203.0.113.0/24"), P("192.0.2.0/24")], groups, down());
    a.update([P("192.0.2.0/24"), P("198.51.100.0/24")], groups, down());
    assert.deepEqual(a.states(), new Map([["203.0.113.0/24", "withdrawn"], ["192.0.2.0/24", "announced"], ["198.51.100.0/24", "announced"]]));
    assert.equal(a.decisions().get("203.0.113.0/24")!.reason, "no longer in bgp.announce");
    a.forget("203.0.113.0/24");
    a.forget("192.0.2.0/24"); // announced: not forgotten
    assert.deepEqual([...a.states().keys()], ["192.0.2.0/24", "198.51.100.0/24"]);
  });

  test("shutdown: announced prefixes turn graceful, withdrawn ones stay withdrawn, later health and reloads change nothing, then all are withdrawn", () => {
    const a = new Announcer();
    const allDown = down(["tcp 198.51.100.10:80", "10.3.0.1:80"]);
    a.update([P("192.0.2.0/24"), P("203.0.113.10/32")], groups, down(["tcp 203.0.113.10:80", "10.2.0.1:8080"], ["tcp 203.0.113.10:80", "10.2.0.2:8080"]));
    a.beginShutdown();
    assert.equal(a.shuttingDown, true);
    assert.deepEqual(a.states(), new Map([["192.0.2.0/24", "graceful"], ["203.0.113.10/32", "withdrawn"]]));
    assert.equal(a.update([P("192.0.2.0/24"), P("203.0.113.10/32")], groups, []), false);
    assert.equal(a.update([], groups, allDown), false);
    assert.deepEqual(a.states(), new Map([["192.0.2.0/24", "graceful"], ["203.0.113.10/32", "withdrawn"]]));
    a.withdrawAll("shutting down");
    assert.deepEqual(a.states(), new Map([["192.0.2.0/24", "withdrawn"], ["203.0.113.10/32", "withdrawn"]]));
  });
});
