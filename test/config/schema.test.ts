import { test, describe } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  DEFAULT_CAPACITY,
  DEFAULT_DAEMON,
  DEFAULT_NAT_PORTS,
  DEFAULT_TIMEOUTS,
  DEFAULT_TUNNEL_MTU,
  DEFAULT_POLICY,
  DEFAULT_AFFINITY,
  DEFAULT_WEIGHT,
  type PiasConfig,
} from "../../src/config/types.js";
import { defaultConfig, validateConfig } from "../../src/config/validate.js";
import { formatConfigPath, ConfigValidationError } from "../../src/config/values.js";
import { transportAddressKey } from "../../src/net/ta.js";
import { ConfigError } from "../../src/errors.js";
import { parseAddress } from "../../src/net/addr.js";

const RUNS = Number(process.env.PIAS_FUZZ_RUNS) || 500;

/** The example configuration from the issue. */
export const ISSUE_EXAMPLE = {
  proxy: { address: "198.51.100.1", address6: "2001:db8:ff::1" },
  groups: [
    {
      protocol: "tcp",
      address: "203.0.113.10",
      port: 80,
      policy: "affinity",
      targets: [
        { address: "192.0.2.11", port: 8080 },
        { address: "192.0.2.12", port: 8080, aware: true },
      ],
    },
  ],
};

const b = (text: string): Uint8Array => parseAddress(text).bytes;
const clone = <T>(v: T): T => structuredClone(v);

/** A copy of the issue example with `edit` applied. */
function example(edit: (c: any) => void): unknown {
  const c = clone(ISSUE_EXAMPLE) as any;
  edit(c);
  return c;
}

function rejects(raw: unknown, message: string): void {
  assert.throws(
    () => validateConfig(raw),
    (err: unknown) => {
      assert.ok(err instanceof ConfigValidationError, `expected ConfigValidationError, got ${String(err)}`);
      assert.ok(err instanceof ConfigError);
      assert.equal(err.code, "ECONFIG");
      assert.equal(err.message, message);
      assert.ok(!/[\r\n]/.test(err.message), "message is one line");
      return true;
    },
  );
}

describe("validateConfig: normalisation", () => {
  test("the issue's example config loads with the defaults filled in", () => {
    const config = validateConfig(ISSUE_EXAMPLE);
    const expected: PiasConfig = {
      proxy: {
        address: "198.51.100.1",
        addressBytes: b("198.51.100.1"),
        address6: "2001:db8:ff::1",
        address6Bytes: b("2001:db8:ff::1"),
        natPorts: [1024, 65535],
        verifyChecksums: false,
        tunnelMtu: 1500,
        timeouts: { tcpEstablished: 7440, tcpTransitory: 240, udp: 300, icmp: 60 },
        anycastPrefixes: [],
        halfOpenPerSource: 512,
      },
      capacity: { flows: 1048576, groups: 65536, targets: 65536, prefault: false },
      daemon: DEFAULT_DAEMON,
      cluster: null,
      bgp: null,
      overlay: null,
      groups: [
        {
          name: "tcp 203.0.113.10:80",
          protocol: "tcp",
          family: 4,
          address: "203.0.113.10",
          addressBytes: b("203.0.113.10"),
          port: 80,
          policy: "affinity",
          affinity: "client",
          targets: [
            { address: "192.0.2.11", addressBytes: b("192.0.2.11"), family: 4, port: 8080, key: "192.0.2.11:8080", weight: 1, aware: false, label: null, distance: 0 },
            { address: "192.0.2.12", addressBytes: b("192.0.2.12"), family: 4, port: 8080, key: "192.0.2.12:8080", weight: 1, aware: true, label: null, distance: 0 },
          ],
          scopes: [],
          health: null,
        },
      ],
    };
    assert.deepEqual(config, expected);
  });

  test("the defaults are the documented values", () => {
    assert.deepEqual(DEFAULT_NAT_PORTS, [1024, 65535]);
    assert.deepEqual(DEFAULT_TIMEOUTS, { tcpEstablished: 7440, tcpTransitory: 240, udp: 300, icmp: 60 });
    assert.deepEqual(DEFAULT_CAPACITY, { flows: 1048576, groups: 65536, targets: 65536, prefault: false });
    assert.equal(DEFAULT_TUNNEL_MTU, 1500);
    assert.equal(DEFAULT_POLICY, "affinity");
    assert.equal(DEFAULT_AFFINITY, "client");
    assert.equal(DEFAULT_WEIGHT, 1);
    const config = defaultConfig();
    assert.deepEqual(config, {
      proxy: {
        address: null,
        addressBytes: null,
        address6: null,
        address6Bytes: null,
        natPorts: [1024, 65535],
        verifyChecksums: false,
        tunnelMtu: 1500,
        timeouts: { tcpEstablished: 7440, tcpTransitory: 240, udp: 300, icmp: 60 },
        anycastPrefixes: [],
        halfOpenPerSource: 512,
      },
      capacity: { flows: 1048576, groups: 65536, targets: 65536, prefault: false },
      daemon: DEFAULT_DAEMON,
      cluster: null,
      bgp: null,
      overlay: null,
      groups: [],
    });
  });

  test("normalising does not share or mutate the default constants", () => {
    const a = validateConfig({});
    (a.proxy.timeouts as { udp: number }).udp = 1;
    (a.proxy.natPorts as [number, number])[0] = 5;
    assert.equal(DEFAULT_TIMEOUTS.udp, 300);
    assert.equal(DEFAULT_NAT_PORTS[0], 1024);
    assert.equal(validateConfig({}).proxy.timeouts.udp, 300);
  });

  test("every configuration owns its address bytes, however often an address is named", () => {
    // addresses no other test names: the first validation parses them
    const group = { protocol: "tcp", address: "203.0.113.77", port: 80, targets: [{ address: "192.0.2.77" }] };
    const config = { proxy: { address: "198.51.100.77" }, groups: [group, { ...group, port: 81 }] };
    const first = validateConfig(config);
    for (const g of first.groups) {
      g.targets[0].addressBytes.fill(7);
      g.addressBytes.fill(7);
    }
    first.proxy.addressBytes!.fill(7);
    const second = validateConfig(config);
    for (const g of second.groups) {
      assert.deepEqual(g.targets[0].addressBytes, b("192.0.2.77"));
      assert.deepEqual(g.addressBytes, b("203.0.113.77"));
    }
    assert.deepEqual(second.proxy.addressBytes, b("198.51.100.77"));
  });

  test("every setting given explicitly is kept", () => {
    const config = validateConfig({
      proxy: {
        address: "198.51.100.1",
        natPorts: [2000, 3000],
        verifyChecksums: true,
        tunnelMtu: 9000,
        timeouts: { tcpEstablished: 100, tcpTransitory: 10, udp: 20, icmp: 5 },
        anycastPrefixes: [],
        halfOpenPerSource: 64,
      },
      capacity: { flows: 1000, groups: 10, targets: 20, prefault: true },
      daemon: { io: "tun", tunName: "px0", routes: false, batch: 32, drainMs: 10, logLevel: "warn", metrics: "[::1]:9464" },
      groups: [
        {
          name: "dns",
          protocol: "udp",
          address: "203.0.113.53",
          port: 53,
          policy: "affinity",
          affinity: "flow",
          targets: [{ address: "192.0.2.53", port: 5353, weight: 7, aware: true, label: "campus", distance: 12 }],
        },
      ],
    });
    assert.deepEqual(config.proxy.natPorts, [2000, 3000]);
    assert.equal(config.proxy.verifyChecksums, true);
    assert.equal(config.proxy.tunnelMtu, 9000);
    assert.deepEqual(config.proxy.timeouts, { tcpEstablished: 100, tcpTransitory: 10, udp: 20, icmp: 5 });
    assert.equal(config.proxy.halfOpenPerSource, 64);
    assert.deepEqual(config.capacity, { flows: 1000, groups: 10, targets: 20, prefault: true });
    assert.deepEqual(config.daemon, { ...DEFAULT_DAEMON, tunName: "px0", routes: false, batch: 32, drainMs: 10, logLevel: "warn", metrics: "[::1]:9464" });
    const g = config.groups[0];
    assert.equal(g.name, "dns");
    assert.equal(g.affinity, "flow");
    assert.deepEqual(
      { ...g.targets[0], addressBytes: undefined },
      { address: "192.0.2.53", addressBytes: undefined, family: 4, port: 5353, key: "192.0.2.53:5353", weight: 7, aware: true, label: "campus", distance: 12 },
    );
  });

  test("a target's port defaults to the group's port, and port 0 groups keep the client's port", () => {
    const config = validateConfig({
      proxy: { address: "198.51.100.1" },
      groups: [
        { protocol: "tcp", address: "203.0.113.10", port: 443, targets: [{ address: "192.0.2.11" }] },
        { protocol: "tcp", address: "203.0.113.10", port: 0, targets: [{ address: "192.0.2.11" }, { address: "192.0.2.12", port: 8080 }] },
      ],
    });
    assert.equal(config.groups[0].targets[0].port, 443);
    assert.equal(config.groups[1].targets[0].port, 0);
    assert.equal(config.groups[1].targets[0].key, "192.0.2.11:0");
    assert.equal(config.groups[1].targets[1].port, 8080);
    assert.equal(config.groups[1].name, "tcp 203.0.113.10:0");
  });

  test("IPv6 addresses are kept in RFC 5952 form and named in brackets", () => {
    const config = validateConfig({
      proxy: { address6: "2001:DB8:FF:0:0:0:0:1" },
      groups: [{ protocol: "udp", address: "2001:0db8::0053", port: 53, policy: "proximity", targets: [{ address: "2001:db8:1::5", distance: 3 }] }],
    });
    assert.equal(config.proxy.address6, "2001:db8:ff::1");
    assert.equal(config.proxy.address, null);
    const g = config.groups[0];
    assert.equal(g.family, 6);
    assert.equal(g.address, "2001:db8::53");
    assert.equal(g.name, "udp [2001:db8::53]:53");
    assert.equal(g.targets[0].key, "[2001:db8:1::5]:53");
    assert.equal(g.targets[0].addressBytes.length, 16);
  });

  test("an icmp group has port 0, may say so, and its targets too", () => {
    const config = validateConfig({
      proxy: { address: "198.51.100.1" },
      groups: [
        { protocol: "icmp", address: "203.0.113.10", targets: [{ address: "192.0.2.11" }] },
        { protocol: "icmp", address: "203.0.113.11", port: 0, targets: [{ address: "192.0.2.11", port: 0 }] },
      ],
    });
    assert.equal(config.groups[0].port, 0);
    assert.equal(config.groups[0].name, "icmp 203.0.113.10:0");
    assert.equal(config.groups[0].targets[0].port, 0);
    assert.equal(config.groups[1].targets[0].port, 0);
  });

  test("a group may have no targets", () => {
    const config = validateConfig({ proxy: { address: "198.51.100.1" }, groups: [{ protocol: "tcp", address: "203.0.113.10", port: 80, targets: [] }, { protocol: "udp", address: "203.0.113.10", port: 80 }] });
    assert.deepEqual(config.groups[0].targets, []);
    assert.deepEqual(config.groups[1].targets, []);
  });

  test("the same TA with another protocol or port is a different group", () => {
    const config = validateConfig({
      proxy: { address: "198.51.100.1" },
      groups: [
        { protocol: "tcp", address: "203.0.113.10", port: 80 },
        { protocol: "udp", address: "203.0.113.10", port: 80 },
        { protocol: "tcp", address: "203.0.113.10", port: 0 },
        { protocol: "icmp", address: "203.0.113.10" },
      ],
    });
    assert.equal(config.groups.length, 4);
  });

  test("the input is not modified", () => {
    const input = clone(ISSUE_EXAMPLE);
    validateConfig(input);
    assert.deepEqual(input, ISSUE_EXAMPLE);
  });

  test("transportAddressKey and formatConfigPath write what messages use", () => {
    assert.equal(transportAddressKey("tcp", b("203.0.113.10"), 80), "tcp 203.0.113.10:80");
    assert.equal(transportAddressKey("udp", b("2001:db8::1"), 53), "udp [2001:db8::1]:53");
    assert.equal(transportAddressKey("icmp", b("2001:db8::1"), 0), "icmp [2001:db8::1]:0");
    assert.equal(formatConfigPath(["groups", 0, "targets", 1, "address"]), "groups[0].targets[1].address");
    assert.equal(formatConfigPath([]), "");
  });
});

describe("validateConfig: one-line errors naming the path", () => {
  test("an invalid target address", () => {
    rejects(
      example((c) => (c.groups[0].targets[1].address = "192.0.2.300")),
      'groups[0].targets[1].address: "192.0.2.300" is not an IPv4 or IPv6 address',
    );
    rejects(
      example((c) => (c.groups[0].targets[0].address = "fe80::1%eth0")),
      'groups[0].targets[0].address: "fe80::1%eth0" is not an IPv4 or IPv6 address',
    );
  });

  test("a duplicate group, even when the address is written differently", () => {
    rejects(
      example((c) => c.groups.push({ protocol: "udp", address: "203.0.113.10", port: 80 }, { protocol: "tcp", address: "203.0.113.10", port: 80 })),
      "groups[2]: duplicate group tcp 203.0.113.10:80 (also groups[0])",
    );
    rejects(
      example((c) => c.groups.push({ protocol: "udp", address: "2001:db8::10", port: 53 }, { protocol: "udp", address: "2001:DB8:0::0:10", port: 53 })),
      "groups[2]: duplicate group udp [2001:db8::10]:53 (also groups[1])",
    );
    rejects(
      example((c) => c.groups.push({ protocol: "icmp", address: "203.0.113.10" }, { protocol: "icmp", address: "203.0.113.10", port: 0 })),
      "groups[2]: duplicate group icmp 203.0.113.10:0 (also groups[1])",
    );
  });

  test("a missing proxy address for the family a group uses", () => {
    rejects(
      example((c) => {
        delete c.proxy.address6;
        c.groups.push({ protocol: "udp", address: "2001:db8::53", port: 53 });
      }),
      "proxy.address6: required because groups[1] is IPv6",
    );
    rejects(
      example((c) => delete c.proxy),
      "proxy.address: required because groups[0] is IPv4",
    );
  });

  test("a proxy address of the wrong family", () => {
    rejects({ proxy: { address: "2001:db8::1" } }, "proxy.address: 2001:db8::1 is IPv6; proxy.address is the IPv4 address (put it in proxy.address6)");
    rejects({ proxy: { address6: "198.51.100.1" } }, "proxy.address6: 198.51.100.1 is IPv4; proxy.address6 is the IPv6 address (put it in proxy.address)");
  });

  test("an unknown policy or affinity mode", () => {
    rejects(
      example((c) => (c.groups[0].policy = "fastest")),
      'groups[0].policy: "fastest" is not one of affinity, round-robin, random, least-load, proximity',
    );
    rejects(
      example((c) => (c.groups[0].policy = "Affinity")),
      'groups[0].policy: "Affinity" is not one of affinity, round-robin, random, least-load, proximity',
    );
    rejects(example((c) => (c.groups[0].policy = 1)), "groups[0].policy: must be one of affinity, round-robin, random, least-load, proximity, got 1");
    rejects(example((c) => (c.groups[0].affinity = "host")), 'groups[0].affinity: "host" is not one of client, flow');
  });

  test("an affinity mode with a policy other than affinity", () => {
    rejects(
      example((c) => {
        c.groups[0].policy = "round-robin";
        c.groups[0].affinity = "flow";
      }),
      "groups[0].affinity: only meaningful with policy affinity, but the policy is round-robin",
    );
  });

  test("unknown keys are rejected everywhere, with a hint for near misses", () => {
    rejects({ grups: [] }, 'unknown key "grups" at top level (did you mean "groups"?)');
    rejects({ frobnicate: 1 }, 'unknown key "frobnicate" at top level');
    rejects(example((c) => (c.proxy.adress = "x")), 'proxy: unknown key "adress" (did you mean "address"?)');
    rejects(example((c) => (c.proxy.timeouts = { tcp: 10 })), 'proxy.timeouts: unknown key "tcp"');
    rejects(example((c) => (c.proxy.timeouts = { tcpestablished: 10 })), 'proxy.timeouts: unknown key "tcpestablished" (did you mean "tcpEstablished"?)');
    rejects({ capacity: { flow: 10 } }, 'capacity: unknown key "flow" (did you mean "flows"?)');
    rejects(example((c) => (c.groups[0].target = [])), 'groups[0]: unknown key "target" (did you mean "targets"?)');
    rejects(example((c) => (c.groups[0].targets[1].wieght = 2)), 'groups[0].targets[1]: unknown key "wieght" (did you mean "weight"?)');
    rejects(example((c) => (c.groups[0].targets[1]["__proto__x"] = 2)), 'groups[0].targets[1]: unknown key "__proto__x"');
    rejects(JSON.parse('{"__proto__": {"groups": []}}'), 'unknown key "__proto__" at top level');
  });

  test("a target of the other family than its group", () => {
    rejects(
      example((c) => (c.groups[0].targets[1].address = "2001:db8::12")),
      "groups[0].targets[1].address: 2001:db8::12 is IPv6 but the group address 203.0.113.10 is IPv4",
    );
  });

  test("an icmp group or target with a port", () => {
    rejects(
      example((c) => c.groups.push({ protocol: "icmp", address: "203.0.113.10", port: 7 })),
      "groups[1].port: must be absent or 0 for icmp (ICMP has no ports), got 7",
    );
    rejects(
      example((c) => c.groups.push({ protocol: "icmp", address: "203.0.113.10", targets: [{ address: "192.0.2.11", port: 8080 }] })),
      "groups[1].targets[0].port: must be absent or 0 for an icmp group (ICMP has no ports), got 8080",
    );
    rejects(
      example((c) => c.groups.push({ protocol: "icmp", address: "203.0.113.10", port: "0" })),
      'groups[1].port: must be absent or 0 for icmp (ICMP has no ports), got the string "0"',
    );
  });

  test("a tcp or udp group without a port, or with a bad protocol", () => {
    rejects(example((c) => delete c.groups[0].port), "groups[0].port: required for tcp (0 = every port)");
    rejects(example((c) => delete c.groups[0].protocol), "groups[0].protocol: required (one of tcp, udp, icmp)");
    rejects(example((c) => (c.groups[0].protocol = "sctp")), 'groups[0].protocol: "sctp" is not one of tcp, udp, icmp');
    rejects(example((c) => delete c.groups[0].address), "groups[0].address: required");
    rejects(example((c) => delete c.groups[0].targets[0].address), "groups[0].targets[0].address: required");
  });

  test("strings, fractions and out-of-range values are rejected where integers are meant", () => {
    rejects(example((c) => (c.groups[0].port = "80")), 'groups[0].port: must be an integer 0..65535, got the string "80"');
    rejects(example((c) => (c.groups[0].port = 80.5)), "groups[0].port: 80.5 is not an integer");
    rejects(example((c) => (c.groups[0].port = 65536)), "groups[0].port: 65536 is not in 0..65535");
    rejects(example((c) => (c.groups[0].port = -1)), "groups[0].port: -1 is not in 0..65535");
    rejects(example((c) => (c.groups[0].port = null)), "groups[0].port: must be an integer 0..65535, got null");
    rejects(example((c) => (c.groups[0].port = Number.NaN)), "groups[0].port: NaN is not an integer");
    rejects(example((c) => (c.groups[0].targets[0].port = true)), "groups[0].targets[0].port: must be an integer 0..65535, got true");
    rejects(example((c) => (c.groups[0].targets[0].weight = 0)), "groups[0].targets[0].weight: 0 is not in 1..65535");
    rejects(example((c) => (c.groups[0].targets[0].weight = 65536)), "groups[0].targets[0].weight: 65536 is not in 1..65535");
    rejects(example((c) => (c.groups[0].targets[0].distance = -3)), "groups[0].targets[0].distance: -3 is not in 0..4294967295");
    rejects(example((c) => (c.proxy.tunnelMtu = 575)), "proxy.tunnelMtu: 575 is not in 576..65535");
    rejects(example((c) => (c.proxy.timeouts = { udp: 0 })), "proxy.timeouts.udp: 0 is not in 1..31536000");
    rejects(example((c) => (c.proxy.timeouts = { icmp: "60" })), 'proxy.timeouts.icmp: must be an integer 1..31536000, got the string "60"');
    rejects({ capacity: { flows: 16777217 } }, "capacity.flows: 16777217 is not in 1..16777216");
    rejects({ capacity: { groups: 0 } }, "capacity.groups: 0 is not in 1..4194304");
    rejects({ capacity: { targets: 4194305 } }, "capacity.targets: 4194305 is not in 1..4194304");
    rejects({ capacity: { prefault: "yes" } }, 'capacity.prefault: must be true or false, got the string "yes"');
  });

  test("booleans must be booleans", () => {
    rejects(example((c) => (c.groups[0].targets[1].aware = "yes")), 'groups[0].targets[1].aware: must be true or false, got the string "yes"');
    rejects(example((c) => (c.proxy.verifyChecksums = 1)), "proxy.verifyChecksums: must be true or false, got 1");
  });

  test("a bad NAT port range", () => {
    rejects(example((c) => (c.proxy.natPorts = [3000, 2000])), "proxy.natPorts: min 3000 is greater than max 2000");
    rejects(example((c) => (c.proxy.natPorts = [0, 2000])), "proxy.natPorts[0]: 0 is not in 1..65535");
    rejects(example((c) => (c.proxy.natPorts = [1024, "65535"])), 'proxy.natPorts[1]: must be an integer 1..65535, got the string "65535"');
    rejects(example((c) => (c.proxy.natPorts = [1024])), "proxy.natPorts: must be a list of two ports [min, max], got a list of 1");
    rejects(example((c) => (c.proxy.natPorts = { min: 1, max: 2 })), "proxy.natPorts: must be a list of two ports [min, max], got an object");
  });

  test("a tunnel MTU below the IPv6 minimum when the proxy carries IPv6", () => {
    rejects(example((c) => (c.proxy.tunnelMtu = 1000)), "proxy.tunnelMtu: 1000 is below 1280, the IPv6 minimum MTU, and proxy.address6 is set");
    assert.equal(validateConfig({ proxy: { address: "198.51.100.1", tunnelMtu: 576 } }).proxy.tunnelMtu, 576);
  });

  test("a duplicate target within a group", () => {
    rejects(
      example((c) => c.groups[0].targets.push({ address: "192.0.2.11", port: 8080, aware: true })),
      "groups[0].targets[2]: duplicate target 192.0.2.11:8080 (also targets[0])",
    );
    // the defaulted port counts
    rejects(
      example((c) => c.groups[0].targets.push({ address: "192.0.2.13", port: 80 }, { address: "192.0.2.13" })),
      "groups[0].targets[3]: duplicate target 192.0.2.13:80 (also targets[2])",
    );
  });

  test("addresses that cannot be unicast hosts", () => {
    rejects(example((c) => (c.groups[0].address = "0.0.0.0")), "groups[0].address: 0.0.0.0 is the unspecified address, not a unicast address");
    rejects(example((c) => (c.groups[0].address = "224.0.0.1")), "groups[0].address: 224.0.0.1 is a multicast address, not a unicast address");
    rejects(example((c) => (c.groups[0].targets[0].address = "255.255.255.255")), "groups[0].targets[0].address: 255.255.255.255 is the broadcast address, not a unicast address");
    rejects(example((c) => (c.proxy.address6 = "ff02::1")), "proxy.address6: ff02::1 is a multicast address, not a unicast address");
    rejects(example((c) => (c.proxy.address6 = "::")), "proxy.address6: :: is the unspecified address, not a unicast address");
  });

  test("a group or target at the proxy's own address, or a target at its group's address", () => {
    rejects(example((c) => (c.groups[0].address = "198.51.100.1")), "groups[0].address: 198.51.100.1 is the proxy's own unicast address (proxy.address)");
    rejects(example((c) => (c.groups[0].targets[1].address = "198.51.100.1")), "groups[0].targets[1].address: 198.51.100.1 is the proxy's own unicast address (proxy.address)");
    rejects(example((c) => (c.groups[0].targets[0].address = "203.0.113.10")), "groups[0].targets[0].address: 203.0.113.10 is the group's own anycast address");
  });

  test("names and labels must be usable on one log line and names unique", () => {
    rejects(example((c) => (c.groups[0].name = "")), "groups[0].name: must not be empty");
    rejects(example((c) => (c.groups[0].name = 7)), "groups[0].name: must be a string, got 7");
    rejects(example((c) => (c.groups[0].name = "a\nb")), 'groups[0].name: "a\\nb" contains a control character');
    rejects(example((c) => (c.groups[0].targets[0].label = "x".repeat(201))), "groups[0].targets[0].label: is 201 characters long, at most 200 allowed");
    rejects(
      example((c) => {
        c.groups[0].name = "web";
        c.groups.push({ name: "web", protocol: "udp", address: "203.0.113.10", port: 80 });
      }),
      'groups[1].name: duplicate name "web" (also groups[0])',
    );
    rejects(
      example((c) => {
        c.groups[0].name = "udp 203.0.113.10:80";
        c.groups.push({ protocol: "udp", address: "203.0.113.10", port: 80 });
      }),
      'groups[1]: its default name "udp 203.0.113.10:80" is already the name of groups[0]',
    );
  });

  test("more distinct labels than the core can number", () => {
    const targets = Array.from({ length: 256 }, (_, i) => ({ address: `10.0.0.${i}`, label: `l${i}` }));
    rejects(
      { proxy: { address: "198.51.100.1" }, groups: [{ protocol: "tcp", address: "203.0.113.10", port: 80, targets }] },
      "groups[0].targets[255].label: more than 255 distinct labels in the configuration",
    );
    targets[255].label = "l0";
    assert.equal(validateConfig({ proxy: { address: "198.51.100.1" }, groups: [{ protocol: "tcp", address: "203.0.113.10", port: 80, targets }] }).groups[0].targets.length, 256);
  });

  test("sections of the wrong shape", () => {
    rejects(null, "the configuration must be an object, got null");
    rejects([], "the configuration must be an object, got a list");
    rejects("proxy", 'the configuration must be an object, got the string "proxy"');
    rejects({ groups: {} }, "groups: must be a list, got an object");
    rejects({ groups: null }, "groups: must be a list, got null");
    rejects({ proxy: [] }, "proxy: must be an object with keys address, address6, natPorts, verifyChecksums, tunnelMtu, timeouts, anycastPrefixes, halfOpenPerSource, got a list");
    rejects(example((c) => (c.groups[0].targets = "192.0.2.11")), 'groups[0].targets: must be a list, got the string "192.0.2.11"');
    rejects(example((c) => (c.groups[0].targets[0] = "192.0.2.11:8080")), 'groups[0].targets[0]: must be an object with keys address, port, weight, aware, label, distance, got the string "192.0.2.11:8080"');
    rejects(example((c) => (c.groups[0].address = 3405803786)), "groups[0].address: must be an IPv4 or IPv6 address string, got 3405803786");
    rejects({ proxy: { address: new Date(0) } }, "proxy.address: must be an IPv4 or IPv6 address string, got a Date");
  });

  test("more groups or targets than the configured capacity", () => {
    rejects(
      example((c) => {
        c.capacity = { groups: 1 };
        c.groups.push({ protocol: "udp", address: "203.0.113.10", port: 80 });
      }),
      "groups[1]: more groups than capacity.groups (1)",
    );
    rejects(
      example((c) => {
        c.capacity = { targets: 3 };
        c.groups.push({ protocol: "udp", address: "203.0.113.10", port: 80, targets: [{ address: "192.0.2.1" }, { address: "192.0.2.2" }] });
      }),
      "groups[1].targets[1]: more targets in all groups than capacity.targets (3)",
    );
  });

  test("any input either validates or fails with a single-line ConfigError", () => {
    const mutateExample = fc
      .tuple(fc.constantFrom("proxy", "groups", "capacity"), fc.jsonValue(), fc.nat(), fc.constantFrom("address", "port", "policy", "targets", "weight", "aware", "protocol", "natPorts", "x"))
      .map(([section, junk, i, key]) => {
        const c = clone(ISSUE_EXAMPLE) as any;
        if (section === "groups") {
          const g = c.groups[0];
          if (i % 2 === 0) g[key] = junk;
          else g.targets[i % g.targets.length][key] = junk;
        } else {
          c[section] = i % 3 === 0 ? junk : { ...(c[section] ?? {}), [key]: junk };
        }
        return c;
      });
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), fc.anything(), mutateExample), (raw) => {
        try {
          validateConfig(raw);
        } catch (err) {
          assert.ok(err instanceof ConfigError, String(err));
          assert.ok(!/[\r\n]/.test(err.message), err.message);
          assert.ok(err.message.length < 400, err.message);
        }
      }),
      { numRuns: RUNS },
    );
  });
});

test("scopes: a group maps client prefixes to target labels; each rule is checked", () => {
  const group = (scopes: unknown) => ({
    proxy: { address: "198.51.100.1" },
    groups: [{ protocol: "udp", address: "203.0.113.10", port: 53, targets: [{ address: "192.0.2.1", label: "campus" }, { address: "192.0.2.2" }], scopes }],
  });
  assert.deepEqual(validateConfig(group([{ prefix: "10.1.0.0/16", label: "campus" }])).groups[0].scopes, [{ prefix: "10.1.0.0/16", label: "campus" }]);
  const bad: [unknown, RegExp][] = [
    [[{ prefix: "10.1.0.0/16" }], /groups\[0\]\.scopes\[0\]\.label: required/],
    [[{ prefix: "10.1.0.0/16", label: "lab" }], /groups\[0\]\.scopes\[0\]\.label: no target of this group has label "lab"/],
    [[{ prefix: "2001:db8::/32", label: "campus" }], /groups\[0\]\.scopes\[0\]\.prefix: 2001:db8::\/32 is IPv6 but the group is IPv4/],
    [[{ prefix: "10.1.0.1/16", label: "campus" }], /groups\[0\]\.scopes\[0\]\.prefix: .*host bits/],
    [[{ prefix: "10.1.0.0/16", label: "campus", extra: 1 }], /unknown key "extra"/],
  ];
  for (const [scopes, message] of bad) {
    assert.throws(() => validateConfig(group(scopes)), (e: Error) => message.test(e.message) && !e.message.includes("\n"), String(message));
  }
});

describe("validateConfig: the daemon section, health checks and anycast prefixes", () => {
  test("daemon settings are filled with their defaults and kept when given", () => {
    assert.deepEqual(validateConfig({}).daemon, DEFAULT_DAEMON);
    const d = validateConfig({ daemon: { io: "pcap", pcapInterface: "eth1", metrics: "127.0.0.1:9464", batch: 64, drainMs: 0, logLevel: "debug" } }).daemon;
    assert.deepEqual(d, { ...DEFAULT_DAEMON, io: "pcap", pcapInterface: "eth1", metrics: "127.0.0.1:9464", batch: 64, drainMs: 0, logLevel: "debug" });
  });

  test("bad daemon settings are named by path", () => {
    rejects({ daemon: { io: "pcap" } }, "daemon.pcapInterface: required with io pcap: the interface to capture on");
    rejects({ daemon: { io: "af_xdp" } }, 'daemon.io: "af_xdp" is not one of tun, pcap, xdp');
    rejects({ daemon: { metrics: "9464" } }, 'daemon.metrics: "9464" is not HOST:PORT (e.g. "127.0.0.1:9464")');
    rejects({ daemon: { tunName: "a-very-long-interface-name" } }, 'daemon.tunName: "a-very-long-interface-name" is not an interface name (at most 15 characters, no spaces or "/")');
    rejects({ daemon: { batch: 0 } }, "daemon.batch: 0 is not in 1..4096");
  });

  test("io xdp names its interfaces and a mode (auto by default)", () => {
    const d = validateConfig({ daemon: { io: "xdp", xdpInterfaces: ["eth1", "eth2"] } }).daemon;
    assert.deepEqual(d, { ...DEFAULT_DAEMON, io: "xdp", xdpInterfaces: ["eth1", "eth2"], xdpMode: "auto" });
    assert.equal(validateConfig({ daemon: { io: "xdp", xdpInterfaces: ["eth1"], xdpMode: "generic" } }).daemon.xdpMode, "generic");
    rejects({ daemon: { io: "xdp" } }, "daemon.xdpInterfaces: required with io xdp: the interfaces to serve");
    rejects({ daemon: { io: "xdp", xdpInterfaces: [] } }, "daemon.xdpInterfaces: required with io xdp: the interfaces to serve");
    rejects({ daemon: { io: "xdp", xdpInterfaces: ["eth1", "eth1"] } }, "daemon.xdpInterfaces: lists an interface twice");
    rejects({ daemon: { io: "xdp", xdpInterfaces: ["a very long interface"] } }, 'daemon.xdpInterfaces[0]: "a very long interface" is not an interface name');
    rejects({ daemon: { io: "xdp", xdpInterfaces: "eth1" } }, 'daemon.xdpInterfaces: must be a list, got the string "eth1"');
    rejects({ daemon: { io: "xdp", xdpInterfaces: ["eth1"], xdpMode: "offload" } }, 'daemon.xdpMode: "offload" is not one of auto, native, generic');
  });

  test("a group's health check gets its defaults (tcp for tcp groups, udp for udp groups)", () => {
    const c = validateConfig(example((c) => (c.groups[0].health = {})));
    assert.deepEqual(c.groups[0].health, { check: "tcp", port: null, intervalMs: 2000, timeoutMs: 1000, fall: 3, rise: 2, path: "/", send: "ping", expect: null });
    const u = validateConfig({ proxy: { address: "198.51.100.1" }, groups: [{ protocol: "udp", address: "203.0.113.10", port: 53, targets: [{ address: "192.0.2.1" }], health: { send: "q", expect: "a", intervalMs: 500 } }] });
    assert.deepEqual(u.groups[0].health, { check: "udp", port: null, intervalMs: 500, timeoutMs: 500, fall: 3, rise: 2, path: "/", send: "q", expect: "a" });
  });

  test("health checks that cannot work are rejected", () => {
    rejects(example((c) => (c.groups[0].health = { check: "icmp" })), 'groups[0].health.check: "icmp" is not one of tcp, udp, http');
    rejects(example((c) => (c.groups[0].health = { intervalMs: 500, timeoutMs: 600 })), "groups[0].health.timeoutMs: 600 is longer than intervalMs 500");
    rejects(example((c) => (c.groups[0].health = { check: "http", path: "health" })), 'groups[0].health.path: "health" must start with "/"');
    rejects(example((c) => {
      c.groups[0].port = 0;
      c.groups[0].targets = [{ address: "192.0.2.11" }];
      c.groups[0].health = {};
    }), "groups[0].health.port: required: targets[0] has port 0 (the client's port), so the check needs a port");
    rejects({ proxy: { address: "198.51.100.1" }, groups: [{ protocol: "icmp", address: "203.0.113.10", health: {} }] }, "groups[0].health: icmp groups have no health check (their targets have no port to probe)");
  });

  test("anycast prefixes are canonical prefixes", () => {
    assert.deepEqual(validateConfig({ proxy: { anycastPrefixes: ["203.0.113.0/24", "2001:DB8:A:0::/48"] } }).proxy.anycastPrefixes, ["203.0.113.0/24", "2001:db8:a::/48"]);
    rejects({ proxy: { anycastPrefixes: ["203.0.113.7/24"] } }, 'proxy.anycastPrefixes[0]: "203.0.113.7/24" is not an IP prefix: host bits are set past /24 (did you mean 203.0.113.0/24?)');
    assert.throws(() => validateConfig({ proxy: { anycastPrefixes: ["203.0.113.0"] } }), /proxy\.anycastPrefixes\[0\]: /);
  });
});
