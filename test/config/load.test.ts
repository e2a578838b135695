import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig, parseConfigText } from "../../src/config/load.js";
import fc from "fast-check";
import { validateConfig } from "../../src/config/validate.js";
import { ConfigValidationError } from "../../src/config/values.js";
import { ConfigError } from "../../src/errors.js";

const ISSUE_JSON =
  '{"proxy": {"address": "198.51.100.1", "address6": "2001:db8:ff::1"}, "groups": [{"protocol": "tcp", "address": "203.0.113.10", "port": 80, "policy": "affinity", "targets": [{"address": "192.0.2.11", "port": 8080}, {"address": "192.0.2.12", "port": 8080, "aware": true}]}]}';

const ISSUE_YAML = `# the issue's example, in YAML
proxy:
  address: 198.51.100.1
  address6: 2001:db8:ff::1
groups:
  - protocol: tcp
    address: 203.0.113.10
    port: 80
    policy: affinity
    targets:
      - address: 192.0.2.11
        port: 8080
      - address: 192.0.2.12
        port: 8080
        aware: true
`;

const RUNS = Number(process.env.PIAS_FUZZ_RUNS) || 500;

let dir: string;
const file = (name: string, text: string): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

function rejects(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.code, "ECONFIG");
    assert.ok(!/[\r\n]/.test(err.message), `one line: ${JSON.stringify(err.message)}`);
    if (typeof message === "string") assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), "pias-config-"));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("loadConfig", () => {
  test("the issue's JSON example loads with the defaults filled in", () => {
    const config = loadConfig(file("issue.json", ISSUE_JSON));
    assert.deepEqual(config, validateConfig(JSON.parse(ISSUE_JSON)));
    assert.deepEqual(config.proxy.natPorts, [1024, 65535]);
    assert.equal(config.proxy.tunnelMtu, 1500);
    assert.equal(config.groups[0].targets[1].aware, true);
    assert.equal(config.groups[0].targets[0].weight, 1);
  });

  test("the same config in YAML loads identically", () => {
    assert.deepEqual(loadConfig(file("issue.yaml", ISSUE_YAML)), loadConfig(file("issue2.json", ISSUE_JSON)));
  });

  test("YAML flow style and JSON-looking YAML also load", () => {
    const text = `proxy: {address: 198.51.100.1, address6: "2001:db8:ff::1"}\ngroups: [{protocol: tcp, address: 203.0.113.10, port: 80, policy: affinity, targets: [{address: 192.0.2.11, port: 8080}, {address: 192.0.2.12, port: 8080, aware: true}]}]\n`;
    assert.deepEqual(parseConfigText(text, "flow.yaml"), validateConfig(JSON.parse(ISSUE_JSON)));
  });

  test("a missing file is a one-line ConfigError naming the file", () => {
    const path = join(dir, "nope.yaml");
    rejects(() => loadConfig(path), `cannot read config ${path}: ENOENT: no such file or directory`);
  });

  test("a directory is not a config file", () => {
    rejects(() => loadConfig(dir), `cannot read config ${dir}: EISDIR: illegal operation on a directory`);
  });

  test("an empty file or one with only comments is rejected", () => {
    rejects(() => loadConfig(file("empty.yaml", "")), /empty\.yaml: the configuration is empty$/);
    rejects(() => loadConfig(file("blank.yaml", "\n  \n")), /blank\.yaml: the configuration is empty$/);
    rejects(() => loadConfig(file("comments.yaml", "# nothing yet\n")), /comments\.yaml: the configuration is empty$/);
  });

  test("a byte order mark and leading whitespace are fine", () => {
    assert.equal(loadConfig(file("bom.json", `\ufeff  \n${ISSUE_JSON}`)).groups.length, 1);
    assert.equal(loadConfig(file("bom.yaml", `\ufeff${ISSUE_YAML}`)).groups.length, 1);
  });
});

describe("parseConfigText: parse errors name the file and line", () => {
  test("YAML syntax errors become one line with file and line", () => {
    rejects(() => parseConfigText("proxy:\n  address: 198.51.100.1\n   oops: 1\n", "demo.yaml"), /^demo\.yaml:2: .+/);
    rejects(() => parseConfigText("groups: [\n  {protocol: tcp\n", "demo.yaml"), /^demo\.yaml:\d+: .+/);
    rejects(() => parseConfigText('proxy:\n  address: "198.51.100.1\n', "demo.yaml"), /^demo\.yaml:\d+: .+/);
  });

  test("YAML duplicate keys are rejected", () => {
    rejects(() => parseConfigText("proxy:\n  address: 198.51.100.1\n  address: 198.51.100.2\n", "dup.yaml"), "dup.yaml:3: Map keys must be unique");
  });

  test("several YAML documents in one file are rejected", () => {
    rejects(() => parseConfigText("proxy: {}\n---\ngroups: []\n", "multi.yaml"), /^multi\.yaml:2: Source contains multiple documents/);
  });

  test("JSON syntax errors become one line with file and line", () => {
    rejects(() => parseConfigText('{\n  "groups": [],\n}\n', "c.json"), "c.json:3: trailing comma before }");
    rejects(() => parseConfigText('{\n  "groups": [1,]\n}', "c.json"), "c.json:2: trailing comma before ]");
    rejects(() => parseConfigText("{\n  groups: []\n}", "c.json"), 'c.json:2: unexpected "g" where a double-quoted key was expected');
    rejects(() => parseConfigText('{\n  // comment\n  "groups": []\n}', "c.json"), "c.json:2: comments are not allowed in JSON");
    rejects(() => parseConfigText('{\n  "proxy": {"address": \'198.51.100.1\'}\n}', "c.json"), "c.json:2: strings must use double quotes in JSON");
    rejects(() => parseConfigText('{\n  "groups": [\n', "c.json"), "c.json:3: unexpected end of input where a value was expected");
    rejects(() => parseConfigText('{"proxy": {"address": "198.51.100.1\n"}}', "c.json"), "c.json:1: unescaped control character (a line break?) in a string");
    rejects(() => parseConfigText('{"groups": []} x', "c.json"), 'c.json:1: unexpected "x" after the end of the JSON value');
    rejects(() => parseConfigText('{"capacity": {"flows": 0100}}', "c.json"), 'c.json:1: bad number "0100"');
    rejects(() => parseConfigText('{"capacity": {"flows": 1e}}', "c.json"), 'c.json:1: bad number "1e"');
    rejects(() => parseConfigText('{"capacity": {"flows": 0x10}}', "c.json"), 'c.json:1: bad number "0x10"');
    rejects(() => parseConfigText('{"groups" []}', "c.json"), 'c.json:1: expected ":" after key "groups", found "["');
  });

  test("JSON duplicate keys are rejected instead of the last one winning", () => {
    rejects(() => parseConfigText('{\n  "proxy": {"address": "198.51.100.1"},\n  "proxy": {}\n}', "d.json"), 'd.json:3: duplicate key "proxy"');
  });
});

describe("parseConfigText: validation errors name the file, line and path", () => {
  test("in JSON the line is that of the offending key or list item", () => {
    const text = ISSUE_JSON.replace('"192.0.2.12"', '"192.0.2.300"').replace(/, "groups"/, ',\n"groups"').replace(/"targets"/, '\n"targets"');
    rejects(() => parseConfigText(text, "bad.json"), 'bad.json:3: groups[0].targets[1].address: "192.0.2.300" is not an IPv4 or IPv6 address');
  });

  test("in YAML the line is that of the offending key", () => {
    rejects(
      () => parseConfigText(ISSUE_YAML.replace("address: 192.0.2.12", "address: 192.0.2.300"), "demo.yaml"),
      'demo.yaml:13: groups[0].targets[1].address: "192.0.2.300" is not an IPv4 or IPv6 address',
    );
    rejects(() => parseConfigText(ISSUE_YAML.replace("policy: affinity", "policy: fastest"), "demo.yaml"), 'demo.yaml:9: groups[0].policy: "fastest" is not one of affinity, round-robin, random, least-load, proximity');
    rejects(() => parseConfigText(`grups: []\n`, "demo.yaml"), 'demo.yaml:1: unknown key "grups" at top level (did you mean "groups"?)');
    rejects(() => parseConfigText(ISSUE_YAML.replace("        aware: true", "        aware: true\n        wieght: 2"), "demo.yaml"), 'demo.yaml:16: groups[0].targets[1]: unknown key "wieght" (did you mean "weight"?)');
  });

  test("a missing key points at the enclosing entry", () => {
    rejects(() => parseConfigText(ISSUE_YAML.replace("    port: 80\n", ""), "demo.yaml"), "demo.yaml:6: groups[0].port: required for tcp (0 = every port)");
    rejects(() => parseConfigText(ISSUE_YAML.replace("  address6: 2001:db8:ff::1\n", "") + "  - protocol: udp\n    address: 2001:db8::53\n    port: 53\n", "demo.yaml"), "demo.yaml:2: proxy.address6: required because groups[1] is IPv6");
  });

  test("a duplicate group points at the second one", () => {
    const yaml = `proxy:\n  address: 198.51.100.1\ngroups:\n  - protocol: tcp\n    address: 203.0.113.10\n    port: 80\n  - protocol: tcp\n    address: 203.0.113.10\n    port: 80\n`;
    rejects(() => parseConfigText(yaml, "dup.yaml"), "dup.yaml:7: groups[1]: duplicate group tcp 203.0.113.10:80 (also groups[0])");
  });

  test("YAML 1.2 keeps yes/no and quoted numbers as strings, which are rejected", () => {
    rejects(() => parseConfigText(ISSUE_YAML.replace("aware: true", "aware: yes"), "demo.yaml"), 'demo.yaml:15: groups[0].targets[1].aware: must be true or false, got the string "yes"');
    rejects(() => parseConfigText(ISSUE_YAML.replace("port: 80", 'port: "80"'), "demo.yaml"), 'demo.yaml:8: groups[0].port: must be an integer 0..65535, got the string "80"');
  });

  test("an empty YAML value is null, which is rejected rather than defaulted", () => {
    rejects(() => parseConfigText(ISSUE_YAML.replace("    policy: affinity\n", "    policy:\n"), "demo.yaml"), "demo.yaml:9: groups[0].policy: must be one of affinity, round-robin, random, least-load, proximity, got null");
  });

  test("YAML tags that resolve to something else than config values are rejected", () => {
    rejects(() => parseConfigText("proxy:\n  address: !!binary wMYAAQ==\n", "tag.yaml"), "tag.yaml:2: proxy.address: must be an IPv4 or IPv6 address string, got a Buffer");
    rejects(() => parseConfigText("proxy:\n  address: !custom 1.2.3.4\n", "tag.yaml"), /^tag\.yaml:2: .*tag/i);
  });

  test("YAML alias bombs are refused", () => {
    const lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 0; i < 8; i++) lines.push(`${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}]`);
    rejects(() => parseConfigText(lines.join("\n") + "\n", "bomb.yaml"), /^bomb\.yaml: .*alias/i);
  });
});

describe("parseConfigText: properties", () => {
  test("input nested 200,000 deep (JSON or YAML) is a one-line error, not a stack overflow", () => {
    const n = 200_000;
    const json = '{"proxy":' + '{"a":'.repeat(n) + "1" + "}".repeat(n + 1);
    assert.throws(() => parseConfigText(json, "deep.json"), (err: Error) => err instanceof ConfigError && /^deep\.json:1: nested deeper than 64 levels$/.test(err.message));
    const yaml = "proxy: " + "[".repeat(n) + "]".repeat(n) + "\n";
    assert.throws(() => parseConfigText(yaml, "deep.yaml"), (err: Error) => err instanceof ConfigError && /^deep\.yaml(:\d+)?: nested too deeply/.test(err.message));
  });

  test("control characters (C0, DEL, C1) and bidi overrides from a config are escaped in errors, never echoed raw", () => {
    const raw = "\u001b[31m\u007f\u009b2J\u202e";
    for (const [name, text] of [
      ["c.yaml", `proxy:\n  address: "1.2.3.4${raw}"\n`],
      ["c.json", `{"proxy": {"address": "1.2.3.4\\u001b${raw.slice(1)}"}}`],
      ["c.yaml", `proxy:\n  x${raw}: 1\n`],
    ]) {
      assert.throws(() => parseConfigText(text, name), (err: Error) => {
        assert.ok(err instanceof ConfigError);
        assert.doesNotMatch(err.message, /[\u0000-\u001f\u007f-\u009f\u202e]/, JSON.stringify(err.message));
        assert.match(err.message, /\\u(001b|007f|009b|202e)/);
        return true;
      });
    }
  });

  test("JSON that JSON.parse accepts is never rejected as a syntax error", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), fc.constantFrom(undefined, 0, 2, "\t"), (value, indent) => {
        const text = JSON.stringify(value, null, indent);
        try {
          parseConfigText(text, "p.json");
        } catch (err) {
          assert.ok(err instanceof ConfigValidationError, `not a syntax error: ${(err as Error).message}`);
          assert.match(err.message, /^p\.json:\d+: /);
        }
      }),
      { numRuns: RUNS },
    );
  });

  test("a valid JSON config with one entry of any of its objects written twice is refused for a duplicate key, and without it loads", () => {
    // colons, quotes and backslashes inside strings, where a key counter could trip
    const config = {
      proxy: { address: "198.51.100.1", address6: "2001:db8:ff::1", timeouts: { udp: 60 } },
      groups: [
        { name: 'web: "a\\b"', protocol: "tcp", address: "203.0.113.10", port: 80, targets: [{ address: "192.0.2.11", port: 8080, label: 'x:"y"' }, { address: "192.0.2.12", port: 8080, aware: true }] },
        { protocol: "udp", address: "2001:db8::53", port: 53, targets: [{ address: "2001:db8:b::1", label: "::1\\" }] },
      ],
    };
    /** JSON text of `v` in which entry `entry` (modulo its count) of the `object`-th object met is written twice (object -1: none). */
    const write = (v: unknown, object: number, entry: number, seen = { objects: 0 }): string => {
      if (Array.isArray(v)) return `[${v.map((x) => write(x, object, entry, seen)).join(", ")}]`;
      if (v === null || typeof v !== "object") return JSON.stringify(v);
      const mine = seen.objects++ === object;
      const entries = Object.entries(v).map(([k, x]) => `\n${JSON.stringify(k)}: ${write(x, object, entry, seen)}`);
      if (mine) entries.push(entries[entry % entries.length]);
      return `{${entries.join(",")}}`;
    };
    assert.deepEqual(parseConfigText(write(config, -1, 0), "k.json"), validateConfig(config));
    fc.assert(
      fc.property(fc.nat({ max: 7 }), fc.nat(), (object, entry) => {
        assert.throws(() => parseConfigText(write(config, object, entry), "k.json"), (err: Error) => err instanceof ConfigError && /^k\.json:\d+: duplicate key "/.test(err.message));
      }),
      { numRuns: Math.min(RUNS, 200) },
    );
  });

  test("any text, mangled or not, gives a config or a one-line ConfigError", () => {
    const mangle = fc
      .tuple(fc.constantFrom(ISSUE_JSON, ISSUE_YAML, JSON.stringify(JSON.parse(ISSUE_JSON), null, 2)), fc.array(fc.tuple(fc.nat(), fc.string({ maxLength: 3 }), fc.nat({ max: 3 })), { maxLength: 3 }))
      .map(([text, edits]) => {
        for (const [at, insert, del] of edits) {
          const i = at % (text.length + 1);
          text = text.slice(0, i) + insert + text.slice(i + del);
        }
        return text;
      });
    fc.assert(
      fc.property(fc.oneof(mangle, fc.string()), (text) => {
        try {
          parseConfigText(text, "m.conf");
        } catch (err) {
          assert.ok(err instanceof ConfigError, String(err));
          assert.ok(!/[\r\n]/.test(err.message), JSON.stringify(err.message));
          assert.match(err.message, /^m\.conf(:\d+)?: /);
        }
      }),
      { numRuns: RUNS },
    );
  });
});
