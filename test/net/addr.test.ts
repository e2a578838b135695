import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { isIPv4, isIPv6 } from "node:net";
import fc from "fast-check";
import {
  AddressError,
  addressesEqual,
  canonicalAddress,
  endpointKey,
  formatAddress,
  formatIPv6,
  formatPrefix,
  parseAddress,
  parseEndpoint,
  parseIPv4,
  parseIPv6,
  parsePrefix,
  prefixContains,
  tryParseAddress,
} from "../../src/net/addr.js";
import { PiasError } from "../../src/errors.js";

const RUNS = Number(process.env.PIAS_FUZZ_RUNS) || 2000;

const bytes = (...xs: number[]): Uint8Array => Uint8Array.from(xs);
const v6 = (text: string): number[] => [...parseIPv6(text)];

function throwsAddress(fn: () => unknown, message: RegExp | string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof AddressError, `expected AddressError, got ${String(err)}`);
    assert.ok(err instanceof PiasError);
    assert.equal(err.code, "EADDRESS");
    assert.ok(!err.message.includes("\n"), "message is one line");
    if (typeof message === "string") assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
}

describe("IPv4 parsing", () => {
  test("a dotted quad parses to its four bytes", () => {
    assert.deepEqual([...parseIPv4("192.0.2.11")], [192, 0, 2, 11]);
    assert.deepEqual([...parseIPv4("0.0.0.0")], [0, 0, 0, 0]);
    assert.deepEqual([...parseIPv4("255.255.255.255")], [255, 255, 255, 255]);
    assert.deepEqual(parseAddress("10.1.0.0"), { family: 4, bytes: bytes(10, 1, 0, 0) });
  });

  test("a part above 255 is rejected with a reason", () => {
    throwsAddress(() => parseIPv4("192.0.2.300"), '"192.0.2.300" is not an IPv4 address: part 4 (300) is greater than 255');
  });

  test("leading zeros are rejected because they are ambiguous (octal or decimal)", () => {
    throwsAddress(() => parseIPv4("01.2.3.4"), /part 1 "01" has a leading zero/);
    throwsAddress(() => parseIPv4("1.2.3.00"), /part 4 "00" has a leading zero/);
  });

  test("anything but four decimal parts is rejected", () => {
    for (const bad of ["", "1.2.3", "1.2.3.4.5", "1.2..4", "1.2.3.", ".1.2.3", "1.2.3.4 ", " 1.2.3.4", "1.2.3.x", "0x1.2.3.4", "+1.2.3.4", "1.2.3.1e2", "1234.1.1.1", "١.٢.٣.٤"]) {
      assert.throws(() => parseIPv4(bad), AddressError, bad);
      assert.equal(tryParseAddress(bad), undefined, bad);
    }
  });

  test("parseAddress names both families in its message and keeps the reason in detail", () => {
    assert.throws(
      () => parseAddress("192.0.2.300"),
      (err: unknown) => {
        assert.ok(err instanceof AddressError);
        assert.equal(err.message, '"192.0.2.300" is not an IPv4 or IPv6 address');
        assert.equal(err.detail, "part 4 (300) is greater than 255");
        assert.equal(err.input, "192.0.2.300");
        return true;
      },
    );
  });
});

describe("IPv6 parsing", () => {
  test("the unspecified address and loopback parse", () => {
    assert.deepEqual(v6("::"), Array(16).fill(0));
    assert.deepEqual(v6("::1"), [...Array(15).fill(0), 1]);
    assert.equal(parseAddress("::").family, 6);
  });

  test("full, compressed and mixed-case forms give the same bytes", () => {
    const want = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    for (const text of ["2001:db8::1", "2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8:0:0:0:0:0:1", "2001:Db8::0:1", "2001:db8:0::0:0:1"]) {
      assert.deepEqual(v6(text), want, text);
    }
  });

  test(":: may stand for a single zero group, at the start, middle or end", () => {
    assert.deepEqual(v6("1:2:3:4:5:6:7::"), [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 0]);
    assert.deepEqual(v6("::2:3:4:5:6:7:8"), [0, 0, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]);
    assert.deepEqual(v6("1:2:3::5:6:7:8"), [0, 1, 0, 2, 0, 3, 0, 0, 0, 5, 0, 6, 0, 7, 0, 8]);
  });

  test("an embedded IPv4 address fills the last 32 bits", () => {
    assert.deepEqual(v6("::ffff:1.2.3.4"), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4]);
    assert.deepEqual(v6("::1.2.3.4"), [...Array(12).fill(0), 1, 2, 3, 4]);
    assert.deepEqual(v6("64:ff9b::192.0.2.33"), [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 33]);
    assert.deepEqual(v6("1:2:3:4:5:6:1.2.3.4"), [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 1, 2, 3, 4]);
  });

  test("zone ids are rejected with a clear reason", () => {
    throwsAddress(() => parseIPv6("fe80::1%eth0"), '"fe80::1%eth0" is not an IPv6 address: zone ids ("%...") are not accepted');
    throwsAddress(() => parseAddress("fe80::1%1"), '"fe80::1%1" is not an IPv4 or IPv6 address');
  });

  test("invalid forms are rejected", () => {
    const bad = [
      ":",
      ":::",
      "1:::2",
      "1::2::3",
      ":1:2:3:4:5:6:7",
      "1:2:3:4:5:6:7:",
      "1:2:3:4:5:6:7",
      "1:2:3:4:5:6:7:8:9",
      "1::2:3:4:5:6:7:8",
      "::12345",
      "::g",
      "1.2.3.4::",
      "::1.2.3.4:5",
      "1:2:3:4:5:6:7:1.2.3.4",
      "::1.2.3.04",
      "::256.1.1.1",
      "[::1]",
      "::1/128",
      " ::1",
      "::1 ",
      "0x1::",
    ];
    for (const text of bad) {
      assert.throws(() => parseIPv6(text), AddressError, text);
      assert.equal(tryParseAddress(text), undefined, text);
    }
  });

  test("the rejection reasons say what is wrong", () => {
    throwsAddress(() => parseIPv6("1::2::3"), /"::" may appear only once/);
    throwsAddress(() => parseIPv6("1:2:3:4:5:6:7"), /expected 8 groups, found 7/);
    throwsAddress(() => parseIPv6("1::2:3:4:5:6:7:8"), /"::" must stand for at least one zero group/);
    throwsAddress(() => parseIPv6("::12345"), /group "12345" has more than 4 hex digits/);
    throwsAddress(() => parseIPv6("[::1]"), /brackets are not accepted/);
  });

  test("non-strings are rejected, not coerced", () => {
    assert.throws(() => parseAddress(1 as unknown as string), AddressError);
    assert.equal(tryParseAddress(null as unknown as string), undefined);
  });
});

describe("formatting", () => {
  test("IPv6 text is RFC 5952 canonical", () => {
    const cases: [string, string][] = [
      ["2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
      ["::", "::"],
      ["0:0:0:0:0:0:0:1", "::1"],
      ["1:0:0:0:0:0:0:0", "1::"],
      // a single zero group is not compressed
      ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
      // the longest run wins
      ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"],
      // the first run wins a tie
      ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
      // IPv4-mapped keeps the dotted quad
      ["0:0:0:0:0:ffff:c000:0201", "::ffff:192.0.2.1"],
      // other embedded forms are plain hex
      ["::1.2.3.4", "::102:304"],
      ["64:ff9b::192.0.2.33", "64:ff9b::c000:221"],
    ];
    for (const [input, canonical] of cases) assert.equal(canonicalAddress(input), canonical, input);
  });

  test("IPv4 formats as a dotted quad", () => {
    assert.equal(formatAddress(bytes(192, 0, 2, 11)), "192.0.2.11");
  });

  test("addresses of other lengths are refused", () => {
    assert.throws(() => formatAddress(new Uint8Array(5)), AddressError);
    assert.throws(() => formatIPv6(new Uint8Array(4)), AddressError);
  });
});

describe("prefixes", () => {
  test("a prefix parses to its network bytes and length", () => {
    assert.deepEqual(parsePrefix("10.1.0.0/16"), { family: 4, bytes: bytes(10, 1, 0, 0), length: 16 });
    assert.deepEqual(parsePrefix("0.0.0.0/0"), { family: 4, bytes: bytes(0, 0, 0, 0), length: 0 });
    assert.deepEqual(parsePrefix("192.0.2.11/32").length, 32);
    const p = parsePrefix("2001:DB8::/32");
    assert.equal(p.family, 6);
    assert.equal(formatPrefix(p), "2001:db8::/32");
    assert.equal(parsePrefix("2001:db8::1/128").length, 128);
  });

  test("host bits past the length are rejected, naming the intended prefix", () => {
    throwsAddress(() => parsePrefix("10.1.2.0/16"), '"10.1.2.0/16" is not an IP prefix: host bits are set past /16 (did you mean 10.1.0.0/16?)');
    throwsAddress(() => parsePrefix("2001:db8::1/64"), /did you mean 2001:db8::\/64\?/);
    throwsAddress(() => parsePrefix("10.0.0.1/31"), /did you mean 10.0.0.0\/31\?/);
  });

  test("bad lengths and missing lengths are rejected", () => {
    throwsAddress(() => parsePrefix("10.0.0.0/33"), /length "33" is not a decimal number 0..32/);
    throwsAddress(() => parsePrefix("::/129"), /0..128/);
    throwsAddress(() => parsePrefix("10.0.0.0/08"), /length "08"/);
    throwsAddress(() => parsePrefix("10.0.0.0/"), /length ""/);
    throwsAddress(() => parsePrefix("10.0.0.0"), /missing "\/length"/);
    throwsAddress(() => parsePrefix("10.0.0.256/8"), /"10.0.0.256" is not an IPv4 or IPv6 address \(part 4 \(256\) is greater than 255\)/);
  });

  test("prefixContains checks membership within the same family", () => {
    const p = parsePrefix("10.1.0.0/16");
    assert.equal(prefixContains(p, parseIPv4("10.1.255.7")), true);
    assert.equal(prefixContains(p, parseIPv4("10.2.0.1")), false);
    assert.equal(prefixContains(p, parseIPv6("::a01:1")), false);
    assert.equal(prefixContains(parsePrefix("0.0.0.0/0"), parseIPv4("203.0.113.1")), true);
    assert.equal(prefixContains(parsePrefix("2001:db8:8000::/33"), parseIPv6("2001:db8:8000::5")), true);
    assert.equal(prefixContains(parsePrefix("2001:db8:8000::/33"), parseIPv6("2001:db8:7fff::5")), false);
  });
});

describe("endpoints", () => {
  test("endpointKey writes IPv4 as a:p and IPv6 in brackets", () => {
    assert.equal(endpointKey(parseIPv4("192.0.2.11"), 8080), "192.0.2.11:8080");
    assert.equal(endpointKey(parseIPv6("2001:db8:0::1"), 8080), "[2001:db8::1]:8080");
    assert.equal(endpointKey(parseIPv4("192.0.2.11"), 0), "192.0.2.11:0");
  });

  test("endpointKey refuses ports outside 0..65535", () => {
    assert.throws(() => endpointKey(parseIPv4("192.0.2.11"), 65536), AddressError);
    assert.throws(() => endpointKey(parseIPv4("192.0.2.11"), -1), AddressError);
    assert.throws(() => endpointKey(parseIPv4("192.0.2.11"), 1.5), AddressError);
  });

  test("parseEndpoint reads what endpointKey writes and rejects the rest", () => {
    assert.deepEqual(parseEndpoint("192.0.2.11:8080"), { family: 4, bytes: bytes(192, 0, 2, 11), port: 8080 });
    assert.equal(parseEndpoint("[2001:db8::1]:53").port, 53);
    for (const bad of ["192.0.2.11", "192.0.2.11:65536", "192.0.2.11:080", "2001:db8::1:53", "[192.0.2.1]:80", "[2001:db8::1]", "[2001:db8::1]53", "x:1"]) {
      assert.throws(() => parseEndpoint(bad), AddressError, bad);
    }
  });
});

// ---------------------------------------------------------------- properties

const addr4 = fc.uint8Array({ minLength: 4, maxLength: 4 });
/** 16 bytes biased toward zero groups, so "::" compression is exercised. */
const addr6 = fc
  .array(fc.oneof({ weight: 2, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constantFrom(1, 0xffff) }, { weight: 3, arbitrary: fc.integer({ min: 0, max: 0xffff }) }), {
    minLength: 8,
    maxLength: 8,
  })
  .map((words) => {
    const b = new Uint8Array(16);
    words.forEach((w, i) => {
      b[2 * i] = w >> 8;
      b[2 * i + 1] = w & 0xff;
    });
    return b;
  });
const anyAddr = fc.oneof(addr4, addr6, fc.uint8Array({ minLength: 16, maxLength: 16 }));

/** Any RFC 4291 text form of a 16-byte address: random case, leading zeros, "::" placement, embedded IPv4. */
const ipv6TextForm = addr6.chain((b) => {
  const words = Array.from({ length: 8 }, (_, i) => (b[2 * i] << 8) | b[2 * i + 1]);
  const runs: [number, number][] = [];
  for (let i = 0; i < 8; i++) for (let j = i + 1; j <= 8 && words[j - 1] === 0; j++) runs.push([i, j]);
  return fc
    .record({
      pad: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 8, maxLength: 8 }),
      upper: fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
      v4: fc.boolean(),
      run: runs.length ? fc.option(fc.constantFrom(...runs)) : fc.constant(null),
    })
    .map(({ pad, upper, v4, run }) => {
      const group = (i: number): string => {
        let h = words[i].toString(16);
        h = "0".repeat(Math.min(pad[i], 4 - h.length)) + h;
        return upper[i] ? h.toUpperCase() : h;
      };
      const useV4 = v4 && (run === null || run[1] <= 6);
      const last = useV4 ? 6 : 8;
      const part = (from: number, to: number): string[] => Array.from({ length: Math.max(0, to - from) }, (_, k) => group(from + k));
      const tailV4 = useV4 ? [`${b[12]}.${b[13]}.${b[14]}.${b[15]}`] : [];
      let text: string;
      if (run === null) text = [...part(0, last), ...tailV4].join(":");
      else text = `${part(0, run[0]).join(":")}::${[...part(run[1], last), ...tailV4].join(":")}`;
      return { bytes: b, text };
    });
});

describe("address properties", () => {
  test("parse(format(bytes)) gives back the bytes for any 4- or 16-byte address", () => {
    fc.assert(
      fc.property(anyAddr, (b) => {
        const parsed = parseAddress(formatAddress(b));
        assert.equal(parsed.family, b.length === 4 ? 4 : 6);
        assert.ok(addressesEqual(parsed.bytes, b));
      }),
      { numRuns: RUNS },
    );
  });

  test("format(parse(text)) is a fixed point: canonical text round trips unchanged", () => {
    fc.assert(
      fc.property(anyAddr, (b) => {
        const text = formatAddress(b);
        assert.equal(formatAddress(parseAddress(text).bytes), text);
      }),
      { numRuns: RUNS },
    );
  });

  test("every RFC 4291 text form of an IPv6 address parses to the same bytes", () => {
    fc.assert(
      fc.property(ipv6TextForm, ({ bytes: b, text }) => {
        assert.ok(isIPv6(text), `node agrees ${text} is IPv6`);
        assert.ok(addressesEqual(parseIPv6(text), b), text);
        assert.equal(canonicalAddress(text), formatIPv6(b));
      }),
      { numRuns: RUNS },
    );
  });

  test("IPv6 canonical text matches the WHATWG URL serializer (RFC 5952 compression) outside ::ffff:0:0/96", () => {
    fc.assert(
      fc.property(addr6, (b) => {
        const text = formatIPv6(b);
        fc.pre(!text.startsWith("::ffff:") || !text.includes("."));
        assert.equal(new URL(`http://[${text}]/`).hostname, `[${text}]`);
      }),
      { numRuns: RUNS },
    );
  });

  test("acceptance agrees with node:net on random and mutated address-like strings", () => {
    const v6chars = fc.constantFrom(..."0123456789abcdefABCDEF:.".split(""));
    const v4chars = fc.constantFrom(..."0123456789.".split(""));
    const mutate = (base: fc.Arbitrary<string>): fc.Arbitrary<string> =>
      fc.tuple(base, fc.nat(), fc.constantFrom("delete", "insert", "replace"), fc.constantFrom(..."0:.f1G ".split(""))).map(([s, at, op, c]) => {
        const i = s.length ? at % (s.length + 1) : 0;
        if (op === "delete") return s.slice(0, i) + s.slice(i + 1);
        if (op === "insert") return s.slice(0, i) + c + s.slice(i);
        return s.slice(0, i) + c + s.slice(i + 1);
      });
    const candidates = fc.oneof(
      fc.string({ unit: v6chars, maxLength: 41 }),
      fc.string({ unit: v4chars, maxLength: 16 }),
      mutate(ipv6TextForm.map((f) => f.text)),
      mutate(anyAddr.map(formatAddress)),
    );
    fc.assert(
      fc.property(candidates, (s) => {
        const ours = tryParseAddress(s);
        const node = isIPv4(s) ? 4 : isIPv6(s) ? 6 : undefined;
        assert.equal(ours?.family, node, JSON.stringify(s));
      }),
      { numRuns: RUNS },
    );
  });

  test("a prefix of any address and length round trips through its text", () => {
    fc.assert(
      fc.property(anyAddr, fc.nat(), (b, n) => {
        const length = n % (b.length * 8 + 1);
        const network = new Uint8Array(b);
        for (let bit = length; bit < b.length * 8; bit++) network[bit >> 3] &= ~(0x80 >> (bit & 7));
        const p = parsePrefix(`${formatAddress(network)}/${length}`);
        assert.equal(p.length, length);
        assert.ok(addressesEqual(p.bytes, network));
        assert.ok(prefixContains(p, b));
        assert.equal(formatPrefix(p), `${formatAddress(network)}/${length}`);
      }),
      { numRuns: RUNS },
    );
  });

  test("endpoint keys round trip", () => {
    fc.assert(
      fc.property(anyAddr, fc.integer({ min: 0, max: 65535 }), (b, port) => {
        const e = parseEndpoint(endpointKey(b, port));
        assert.equal(e.port, port);
        assert.ok(addressesEqual(e.bytes, b));
      }),
      { numRuns: RUNS },
    );
  });
});
