// The `bgp` section: defaults, normalisation, and a one-line error naming the
// path for every kind of bad input.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { validateConfig } from "../../src/config/validate.js";
import { ConfigValidationError } from "../../src/config/values.js";
import { parseConfigText } from "../../src/config/load.js";

const PROXY = { address: "10.255.0.1", address6: "2001:db8:ff::1", anycastPrefixes: ["203.0.113.0/24", "2001:db8:a::/48"] };
const V4 = { address: "10.0.0.1", as: 65000 };
const V6 = { address: "2001:db8:1::1", as: 65000 };

const withBgp = (bgp: unknown, proxy: unknown = PROXY, daemon?: unknown): unknown => ({ proxy, bgp, ...(daemon ? { daemon } : {}) });

function rejects(bgp: unknown, message: string, proxy?: unknown): void {
  assert.throws(
    () => validateConfig(withBgp(bgp, proxy)),
    (err: unknown) => {
      assert.ok(err instanceof ConfigValidationError, String(err));
      assert.equal(err.message, message);
      assert.ok(!/[\r\n]/.test(err.message));
      return true;
    },
  );
}

describe("bgp: normalisation and defaults", () => {
  test("the issue's example section loads, with the documented defaults filled in", () => {
    const yaml = `
proxy: { address: 10.255.0.1, anycastPrefixes: [203.0.113.0/24] }
daemon: { drainMs: 4000 }
bgp:
  localAs: 65001
  routerId: 10.255.0.1
  neighbors:
    - { address: 10.0.0.1, as: 65000 }
  holdTime: 9
  bfd: false
  announce: [203.0.113.0/24]
  communities: [65001:100]
  bird: managed
`;
    const c = parseConfigText(yaml, "issue.yaml");
    assert.deepEqual(c.bgp, {
      bird: "managed",
      localAs: 65001,
      routerId: "10.255.0.1",
      neighbors: [{ address: "10.0.0.1", family: 4, as: 65000, password: null, multihop: null, interface: null }],
      holdTime: 9,
      bfd: false,
      announce: [{ prefix: "203.0.113.0/24", family: 4, withdrawWhenNoTargets: true }],
      communities: ["65001:100"],
      gracefulShutdownMs: 4000,
      birdConfig: null,
    });
  });

  test("defaults: router id = proxy.address, announce = proxy.anycastPrefixes (withdrawn with no target), hold time 9, no BFD, graceful phase = daemon.drainMs", () => {
    const c = validateConfig(withBgp({ localAs: 65001, neighbors: [V4, V6] }));
    assert.equal(c.bgp!.routerId, "10.255.0.1");
    assert.deepEqual(c.bgp!.announce, [
      { prefix: "203.0.113.0/24", family: 4, withdrawWhenNoTargets: true },
      { prefix: "2001:db8:a::/48", family: 6, withdrawWhenNoTargets: true },
    ]);
    assert.equal(c.bgp!.holdTime, 9);
    assert.equal(c.bgp!.bfd, false);
    assert.equal(c.bgp!.gracefulShutdownMs, 5000);
    assert.equal(validateConfig({}).bgp, null);
  });

  test("IPv6 neighbours (canonical text), passwords, multihop, a link-local neighbour on an interface, standard and large communities", () => {
    const c = validateConfig(withBgp({
      localAs: 4200000000,
      neighbors: [
        { address: "10.0.0.1", as: 65000, password: "s3cr3t pass" },
        { address: "2001:DB8:1:0::1", as: 65000, multihop: 2 },
        { address: "fe80::1", as: 65002, interface: "eth1" },
      ],
      communities: ["65001:100", "65001:1:4000000000", "0:0"],
    }));
    assert.deepEqual(c.bgp!.neighbors.map((n) => [n.address, n.family, n.password, n.multihop, n.interface]), [
      ["10.0.0.1", 4, "s3cr3t pass", null, null],
      ["2001:db8:1::1", 6, null, 2, null],
      ["fe80::1", 6, null, null, "eth1"],
    ]);
    assert.deepEqual(c.bgp!.communities, ["65001:100", "65001:1:4000000000", "0:0"]);
  });

  test("announce entries are a prefix, or { prefix, withdrawWhenNoTargets }", () => {
    const c = validateConfig(withBgp({ localAs: 65001, neighbors: [V4, V6], announce: ["203.0.113.0/25", { prefix: "2001:db8:a::/48", withdrawWhenNoTargets: false }] }));
    assert.deepEqual(c.bgp!.announce, [
      { prefix: "203.0.113.0/25", family: 4, withdrawWhenNoTargets: true },
      { prefix: "2001:db8:a::/48", family: 6, withdrawWhenNoTargets: false },
    ]);
  });

  test("external mode: a control socket path; only announce and gracefulShutdownMs apply", () => {
    const c = validateConfig(withBgp({ bird: "/run/bird/bird.ctl", gracefulShutdownMs: 0 }));
    assert.equal(c.bgp!.bird, "/run/bird/bird.ctl");
    assert.equal(c.bgp!.localAs, null);
    assert.deepEqual(c.bgp!.neighbors, []);
    assert.equal(c.bgp!.gracefulShutdownMs, 0);
    assert.equal(c.bgp!.announce.length, 2);
  });
});

describe("bgp: every bad input is one line naming its path", () => {
  const cases: [string, unknown, string, unknown?][] = [
    ["not an object", "yes", `bgp: must be an object with keys bird, localAs, routerId, neighbors, holdTime, bfd, announce, communities, gracefulShutdownMs, birdConfig, got the string "yes"`],
    ["an unknown key, with a hint", { localAs: 1, neighbors: [V4], holdtime: 3 }, `bgp: unknown key "holdtime" (did you mean "holdTime"?)`],
    ["no localAs", { neighbors: [V4] }, "bgp.localAs: required: this proxy's AS number"],
    ["localAs 0", { localAs: 0, neighbors: [V4] }, "bgp.localAs: 0 is not in 1..4294967295"],
    ["localAs as text", { localAs: "65001", neighbors: [V4] }, `bgp.localAs: must be an integer 1..4294967295, got the string "65001"`],
    ["no neighbours", { localAs: 1 }, "bgp.neighbors: required: the routers to announce to"],
    ["an empty neighbour list", { localAs: 1, neighbors: [] }, "bgp.neighbors: must list at least one neighbour"],
    ["a neighbour without an address", { localAs: 1, neighbors: [{ as: 2 }] }, "bgp.neighbors[0].address: required: the neighbour's IPv4 or IPv6 address"],
    ["a neighbour without an AS", { localAs: 1, neighbors: [{ address: "10.0.0.1" }] }, "bgp.neighbors[0].as: required: the neighbour's AS number"],
    ["a bad neighbour address", { localAs: 1, neighbors: [{ address: "10.0.0.256", as: 2 }] }, `bgp.neighbors[0].address: "10.0.0.256" is not an IPv4 or IPv6 address`],
    ["a multicast neighbour", { localAs: 1, neighbors: [{ address: "224.0.0.5", as: 2 }] }, "bgp.neighbors[0].address: 224.0.0.5 is a multicast address, not a unicast address"],
    ["an unknown neighbour key", { localAs: 1, neighbors: [{ ...V4, port: 179 }] }, `bgp.neighbors[0]: unknown key "port"`],
    ["a duplicate neighbour", { localAs: 1, neighbors: [V4, { address: "10.0.0.1", as: 3 }] }, "bgp.neighbors[1]: duplicate neighbour 10.0.0.1 (also neighbors[0])"],
    ["the proxy itself as neighbour", { localAs: 1, neighbors: [{ address: "10.255.0.1", as: 2 }] }, "bgp.neighbors[0].address: 10.255.0.1 is the proxy's own address"],
    ["a password too long for TCP-MD5", { localAs: 1, neighbors: [{ ...V4, password: "x".repeat(81) }] }, "bgp.neighbors[0].password: is 81 characters long, TCP-MD5 allows at most 80"],
    ["a password with a quote", { localAs: 1, neighbors: [{ ...V4, password: 'a"b' }] }, `bgp.neighbors[0].password: must be printable ASCII without " or \\`],
    ["a link-local neighbour without its interface", { localAs: 1, neighbors: [{ address: "fe80::1", as: 2 }] }, "bgp.neighbors[0].interface: required: fe80::1 is link-local, so BIRD needs the interface it is on"],
    ["a bad interface name", { localAs: 1, neighbors: [{ ...V4, interface: "eth 0" }] }, `bgp.neighbors[0].interface: "eth 0" is not an interface name`],
    ["multihop 0", { localAs: 1, neighbors: [{ ...V4, multihop: 0 }] }, "bgp.neighbors[0].multihop: 0 is not in 1..255"],
    ["BFD with a multihop neighbour", { localAs: 1, neighbors: [V4, { ...V6, multihop: 3 }], bfd: true }, "bgp.neighbors[1].multihop: bgp.bfd needs directly connected neighbours (BIRD runs BFD on a multihop session only from a fixed source address)"],
    ["hold time 2", { localAs: 1, neighbors: [V4, V6], holdTime: 2 }, "bgp.holdTime: 2 is not in 3..65535"],
    ["bfd as text", { localAs: 1, neighbors: [V4, V6], bfd: "yes" }, `bgp.bfd: must be true or false, got the string "yes"`],
    ["an IPv6 router id", { localAs: 1, neighbors: [V4], routerId: "2001:db8::1" }, "bgp.routerId: 2001:db8::1 is IPv6; a BGP router id is written as an IPv4 address"],
    ["no router id and no proxy.address", { localAs: 1, neighbors: [V6] }, "bgp.routerId: required: proxy.address is not set, so there is no default router id (an IPv4 address)", { address6: "2001:db8:ff::1", anycastPrefixes: ["2001:db8:a::/48"] }],
    ["nothing to announce", { localAs: 1, neighbors: [V4] }, "bgp.announce: required: nothing to announce (proxy.anycastPrefixes is empty too)", { address: "10.255.0.1" }],
    ["a prefix with host bits", { localAs: 1, neighbors: [V4], announce: ["203.0.113.1/24"] }, `bgp.announce[0]: "203.0.113.1/24" is not an IP prefix: host bits are set past /24 (did you mean 203.0.113.0/24?)`],
    ["a prefix outside the anycast prefixes", { localAs: 1, neighbors: [V4], announce: ["192.0.2.0/24"] }, "bgp.announce[0]: 192.0.2.0/24 is not inside proxy.anycastPrefixes (203.0.113.0/24, 2001:db8:a::/48): pias would attract traffic it does not serve"],
    ["a prefix wider than the anycast prefix", { localAs: 1, neighbors: [V4], announce: ["203.0.112.0/23"] }, "bgp.announce[0]: 203.0.112.0/23 is not inside proxy.anycastPrefixes (203.0.113.0/24, 2001:db8:a::/48): pias would attract traffic it does not serve"],
    ["a duplicate prefix", { localAs: 1, neighbors: [V4], announce: ["203.0.113.0/24", { prefix: "203.0.113.0/24" }] }, "bgp.announce[1]: duplicate prefix 203.0.113.0/24"],
    ["an announce entry without a prefix", { localAs: 1, neighbors: [V4], announce: [{ withdrawWhenNoTargets: false }] }, `bgp.announce[0].prefix: required, e.g. "203.0.113.0/24"`],
    ["withdrawWhenNoTargets as text", { localAs: 1, neighbors: [V4], announce: [{ prefix: "203.0.113.0/24", withdrawWhenNoTargets: "no" }] }, `bgp.announce[0].withdrawWhenNoTargets: must be true or false, got the string "no"`],
    ["an IPv6 prefix with only IPv4 neighbours", { localAs: 1, neighbors: [V4], announce: ["203.0.113.0/24", "2001:db8:a::/48"] }, "bgp.announce[1]: 2001:db8:a::/48 is IPv6 but no neighbour is: pias announces IPv6 prefixes over IPv6 sessions"],
    ["a community out of range", { localAs: 1, neighbors: [V4], announce: ["203.0.113.0/24"], communities: ["65536:1"] }, `bgp.communities[0]: "65536:1" is not a community: "A:B" with A, B 0..65535, or a large community "A:B:C" with each 0..4294967295`],
    ["a community as a number", { localAs: 1, neighbors: [V4], announce: ["203.0.113.0/24"], communities: [65001] }, `bgp.communities[0]: must be a community string "ASN:VALUE" or "ASN:X:Y", got 65001`],
    ["GRACEFUL_SHUTDOWN as a community", { localAs: 1, neighbors: [V4], announce: ["203.0.113.0/24"], communities: ["65535:0"] }, "bgp.communities[0]: 65535:0 is GRACEFUL_SHUTDOWN (RFC 8326): pias adds it itself while it shuts down"],
    ["a duplicate community", { localAs: 1, neighbors: [V4], announce: ["203.0.113.0/24"], communities: ["1:2", "01:2"] }, `bgp.communities[1]: "01:2" is not a community: "A:B" with A, B 0..65535, or a large community "A:B:C" with each 0..4294967295`],
    ["the same community twice", { localAs: 1, neighbors: [V4], announce: ["203.0.113.0/24"], communities: ["1:2", "1:2"] }, "bgp.communities[1]: duplicate community 1:2"],
    ["bird neither managed nor a path", { bird: "bird.ctl" }, `bgp.bird: "bird.ctl" is neither "managed" nor the absolute path of a BIRD control socket (e.g. /run/bird/bird.ctl)`],
    ["session settings with an external BIRD", { bird: "/run/bird/bird.ctl", neighbors: [V4] }, "bgp.neighbors: only with bird: managed; with an external BIRD the sessions, communities and options are in its own configuration"],
    ["communities with an external BIRD", { bird: "/run/bird/bird.ctl", communities: ["1:2"] }, "bgp.communities: only with bird: managed; with an external BIRD the sessions, communities and options are in its own configuration"],
    ["a relative birdConfig", { localAs: 1, neighbors: [V4], announce: ["203.0.113.0/24"], birdConfig: "extra.conf" }, `bgp.birdConfig: "extra.conf" must be an absolute file path without "`],
    ["a negative graceful phase", { localAs: 1, neighbors: [V4], announce: ["203.0.113.0/24"], gracefulShutdownMs: -1 }, "bgp.gracefulShutdownMs: -1 is not in 0..3600000"],
  ];
  for (const [name, bgp, message, proxy] of cases) {
    test(`${name}: ${message}`, () => rejects(bgp, message, proxy ?? PROXY));
  }

  test("in a YAML file the error carries the line of the offending key", () => {
    assert.throws(
      () => parseConfigText("proxy: { address: 10.255.0.1, anycastPrefixes: [203.0.113.0/24] }\nbgp:\n  localAs: 65001\n  neighbors:\n    - { address: 10.0.0.1, as: 65000 }\n  holdTime: 1\n", "p.yaml"),
      { message: "p.yaml:6: bgp.holdTime: 1 is not in 3..65535" },
    );
  });
});
