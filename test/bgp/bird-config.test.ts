// The managed BIRD's generated configuration: BIRD 2 itself parses every
// variant (`bird -p`), the text says what the config asked for, and a BIRD
// running the prefix protocols carries the right communities. BIRD runs on
// the host with static protocols only (no BGP session: nothing is sent).

import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { validateConfig } from "../../src/config/validate.js";
import { managedBirdConfig, neighborProtocol, prefixProtocols, prefixStatics, type PrefixState } from "../../src/bgp/bird-config.js";
import { TestBird, birdUnavailable } from "../helpers/bird.js";

const skip = birdUnavailable();
const dir = mkdtempSync(join(tmpdir(), "pias-birdconf-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const PROXY = { address: "10.255.0.1", address6: "2001:db8:ff::1", anycastPrefixes: ["203.0.113.0/24", "2001:db8:a::/48"] };
const bgpOf = (bgp: object) => validateConfig({ proxy: PROXY, bgp }).bgp!;

/** Run `bird -p` (parse only) on a configuration; BIRD's complaint, or null. */
function birdParse(text: string, name: string): string | null {
  const file = join(dir, `${name}.conf`);
  writeFileSync(file, text);
  const r = spawnSync("bird", ["-p", "-c", file], { encoding: "utf8" });
  return r.status === 0 ? null : `${r.stderr}${r.stdout}`.trim();
}

describe("managedBirdConfig", () => {
  const extra = join(dir, "extra.conf");
  writeFileSync(extra, "# an operator's additions\nprotocol static extra { ipv4; route 192.0.2.0/24 blackhole; }\n");
  const variants: [string, object][] = [
    ["one IPv4 neighbour", { localAs: 65001, neighbors: [{ address: "10.0.0.1", as: 65000 }], announce: ["203.0.113.0/24"] }],
    ["IPv4 and IPv6 neighbours and prefixes, TCP-MD5, multihop, a link-local neighbour", {
      localAs: 65001,
      neighbors: [
        { address: "10.0.0.1", as: 65000, password: "s3cr3t pass!" },
        { address: "2001:db8:1::1", as: 65000, multihop: 4 },
        { address: "fe80::1", as: 65002, interface: "eth1" },
      ],
    }],
    ["BFD", { localAs: 65001, neighbors: [{ address: "10.0.0.1", as: 65000 }, { address: "2001:db8:1::1", as: 65000 }], bfd: true, holdTime: 3 }],
    ["standard and large communities, a 32-bit AS", { localAs: 4200000000, neighbors: [{ address: "10.0.0.1", as: 65000 }, { address: "2001:db8:1::1", as: 4200000001 }], communities: ["65001:100", "4200000000:1:2"] }],
    ["an included file of the operator's", { localAs: 65001, neighbors: [{ address: "10.0.0.1", as: 65000 }], announce: ["203.0.113.0/24"], birdConfig: extra }],
  ];
  const stateSets: [string, PrefixState][] = [["withdrawn", "withdrawn"], ["announced", "announced"], ["graceful", "graceful"]];
  for (const [name, bgp] of variants) {
    test(`BIRD 2 accepts the generated configuration: ${name}, each prefix state`, { skip }, () => {
      const c = bgpOf(bgp);
      for (const [label, state] of stateSets) {
        const text = managedBirdConfig(c, new Map(c.announce.map((a) => [a.prefix, state])));
        assert.equal(birdParse(text, `${name.replace(/\W+/g, "-")}-${label}`), null, text);
      }
    });
  }

  test("the text holds what the config asked for: AS numbers, hold time and keepalive, password, multihop, interface, BFD, the include", () => {
    const c = bgpOf({ ...variants[1][1], bfd: false, holdTime: 6 });
    const text = managedBirdConfig(c, new Map());
    assert.match(text, /^router id 10\.255\.0\.1;$/m);
    const peer = (address: string): string => text.slice(text.indexOf(`protocol bgp ${neighborProtocol(address)} {`)).split("\n}")[0];
    assert.match(peer("10.0.0.1"), /local as 65001;\n  neighbor 10\.0\.0\.1 as 65000;\n  password "s3cr3t pass!";/);
    assert.match(peer("10.0.0.1"), /hold time 6;\n  keepalive time 2;/);
    assert.match(peer("10.0.0.1"), /graceful restart off;/);
    assert.match(peer("10.0.0.1"), /ipv4 \{ import none; export where proto ~ "pias_\*"; next hop self; \};/);
    assert.match(peer("2001:db8:1::1"), /multihop 4;/);
    assert.match(peer("2001:db8:1::1"), /ipv6 \{ import none;/);
    assert.match(peer("fe80::1"), /neighbor fe80::1 as 65002;\n  interface "eth1";/);
    assert.doesNotMatch(text, /bfd/);
    assert.match(managedBirdConfig(bgpOf(variants[2][1]), new Map()), /protocol bfd \{[^}]*multiplier 3;[^}]*\}[^]*bfd on;/);
    assert.match(managedBirdConfig(bgpOf(variants[4][1]), new Map()), new RegExp(`include "${extra}";\\n$`));
  });

  test("a prefix's protocols follow its state: announced enables the normal one, graceful the twin, withdrawn (or unknown) neither", () => {
    const on = (text: string, name: string): boolean => new RegExp(`protocol static ${name} \\{ ipv4; disabled no;`).test(text);
    const { normal, graceful } = prefixProtocols("203.0.113.0/24");
    for (const [state, n, g] of [["announced", true, false], ["graceful", false, true], ["withdrawn", false, false]] as const) {
      const text = prefixStatics("203.0.113.0/24", state);
      assert.deepEqual([on(text, normal), on(text, graceful)], [n, g], state);
    }
    const c = bgpOf(variants[0][1]);
    assert.ok(!on(managedBirdConfig(c, new Map()), normal));
  });

  test("protocol names are BIRD symbols, distinct per prefix and family", () => {
    const names = ["203.0.113.0/24", "203.0.113.0/25", "2001:db8:a::/48", "2001:db8::a:0/112", "10.1.1.0/24"].flatMap((p) => Object.values(prefixProtocols(p)));
    assert.equal(new Set(names).size, names.length);
    for (const n of names) assert.match(n, /^pias_[A-Za-z0-9_]+$/);
    assert.equal(neighborProtocol("2001:db8:1::1"), "pias_peer_2001_db8_1__1");
  });
});

describe("the prefix protocols in a running BIRD", { skip }, () => {
  test("the normal route carries the configured communities; the graceful twin adds GRACEFUL_SHUTDOWN 65535:0", async () => {
    const communities = ["65001:100", "65001:7:8"];
    const text = ["router id 10.255.0.1;", "protocol device {}", prefixStatics("203.0.113.0/24", "announced", communities), prefixStatics("2001:db8:a::/48", "graceful", communities)].join("\n");
    const bird = new TestBird(null, "statics", dir, text);
    try {
      const v4 = await bird.routes("203.0.113.0/24");
      assert.deepEqual(v4.map((r) => [r.proto, r.communities, r.largeCommunities]), [[prefixProtocols("203.0.113.0/24").normal, ["65001:100"], ["65001:7:8"]]]);
      const v6 = await bird.routes("2001:db8:a::/48");
      assert.deepEqual(v6.map((r) => [r.proto, r.communities, r.largeCommunities]), [[prefixProtocols("2001:db8:a::/48").graceful, ["65001:100", "65535:0"], ["65001:7:8"]]]);
    } finally {
      await bird.stop();
    }
  });
});
