// The control wire format: encode/decode round trips, the exact bytes of a
// JOIN, and rejection of every malformed frame with MessageError alone.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { decode, encode, MAC_LENGTH, MESSAGE_KINDS, MessageError, peekKind, type Message } from "../../src/control/message.js";
import { PiasError } from "../../src/errors.js";
import { anyMessage, GROUP, MESSAGES, RUNS, stamp, targetAt } from "./arbitraries.js";

const JOIN_FIXTURE = Uint8Array.from([
  0x50, 0x49, 0x01, 0x01, // magic "PI", version 1, type JOIN
  0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, // timestamp 1700000000000 ms
  0x0c, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, // 12-byte nonce
  0x06, 0x04, 203, 0, 113, 10, 0x00, 0x50, // TA: tcp, IPv4, 203.0.113.10, port 80
  0x04, 10, 0, 0, 5, 0x1f, 0x90, // target 10.0.0.5:8080
  0x00, 0x01, // weight 1
  0x00, // flags: not PIAS-aware
  0x00, // no label
  ...new Array(MAC_LENGTH).fill(0),
]);

function onlyMessageErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof MessageError, `expected MessageError, got ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
    assert.ok(err instanceof PiasError);
    assert.equal(err.code, "EMESSAGE");
  }
}

function throwsMessageError(fn: () => unknown, reason?: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof MessageError, `expected MessageError, got ${String(err)}`);
    if (reason) assert.equal(err.reason, reason);
    return true;
  });
}

describe("control message wire format", () => {
  test("a JOIN encodes to the documented bytes and decodes back", () => {
    const msg: Message = { type: "join", ta: GROUP, target: targetAt(5) };
    const st = { timestamp: 1_700_000_000_000, nonce: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]) };
    assert.deepEqual([...encode(msg, st)], [...JOIN_FIXTURE]);
    assert.deepEqual(decode(JOIN_FIXTURE), { message: msg, stamp: st });
    assert.equal(peekKind(JOIN_FIXTURE), "join");
  });

  for (const kind of MESSAGE_KINDS) {
    test(`decode(encode(m)) equals m for every ${kind} message`, () => {
      fc.assert(
        fc.property(MESSAGES[kind], stamp(), (m, st) => {
          const frame = encode(m, st);
          assert.equal(peekKind(frame), kind);
          assert.deepEqual(decode(frame), structuredClone({ message: m, stamp: st }));
        }),
        { numRuns: RUNS },
      );
    });
  }

  test("decode of random bytes throws nothing but MessageError", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => onlyMessageErrors(() => decode(b))), { numRuns: RUNS * 10 });
  });

  test("decode of random bytes behind a valid header throws nothing but MessageError", () => {
    fc.assert(
      fc.property(fc.constantFrom(1, 2, 3, 4, 5, 6, 16, 17, 18, 19, 20, 21, 22, 23), fc.uint8Array({ maxLength: 200 }), (type, body) => {
        const frame = new Uint8Array(13 + 12 + body.length + MAC_LENGTH);
        frame.set([0x50, 0x49, 1, type, 0, 0, 1, 0x8b, 0, 0, 0, 0, 12]);
        frame.set(body, 25);
        onlyMessageErrors(() => decode(frame));
      }),
      { numRuns: RUNS * 10 },
    );
  });

  test("every mutated valid frame either decodes or throws MessageError", () => {
    fc.assert(
      fc.property(anyMessage(), stamp(), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (m, st, edits) => {
        const frame = encode(m, st);
        for (const [at, v] of edits) frame[at % frame.length] = v;
        onlyMessageErrors(() => decode(frame));
      }),
      { numRuns: RUNS * 5 },
    );
  });

  test("every strict prefix of a valid frame is rejected (truncated input)", () => {
    fc.assert(
      fc.property(anyMessage(), stamp(), fc.nat(), (m, st, cut) => {
        const frame = encode(m, st);
        throwsMessageError(() => decode(frame.subarray(0, cut % frame.length)));
      }),
      { numRuns: RUNS },
    );
  });

  test("bytes added after the body are rejected (trailing bytes)", () => {
    fc.assert(
      fc.property(anyMessage(), stamp(), fc.uint8Array({ minLength: 1, maxLength: 8 }), (m, st, extra) => {
        const frame = encode(m, st);
        const body = frame.length - MAC_LENGTH;
        const longer = new Uint8Array(frame.length + extra.length);
        longer.set(frame.subarray(0, body));
        longer.set(extra, body);
        longer.set(frame.subarray(body), body + extra.length);
        throwsMessageError(() => decode(longer), "trailing");
        const appended = new Uint8Array(frame.length + extra.length);
        appended.set(frame);
        appended.set(extra, frame.length);
        throwsMessageError(() => decode(appended));
      }),
      { numRuns: RUNS },
    );
  });

  test("a wrong magic, version or type is rejected by name", () => {
    const f = JOIN_FIXTURE.slice();
    f[0] = 0x51;
    throwsMessageError(() => decode(f), "magic");
    const v = JOIN_FIXTURE.slice();
    v[2] = 2;
    throwsMessageError(() => decode(v), "version");
    const t = JOIN_FIXTURE.slice();
    t[3] = 99;
    throwsMessageError(() => decode(t), "type");
  });

  test("out-of-range fields are rejected on decode", () => {
    const at = (off: number, value: number): Uint8Array => {
      const f = JOIN_FIXTURE.slice();
      f[off] = value;
      return f;
    };
    throwsMessageError(() => decode(at(12, 11)), "value"); // nonce length below 12
    throwsMessageError(() => decode(at(25, 2)), "value"); // protocol 2
    throwsMessageError(() => decode(at(26, 5)), "value"); // family 5
    throwsMessageError(() => decode(at(41, 0)), "value"); // weight 0
    throwsMessageError(() => decode(at(42, 2)), "value"); // unknown target flag
    throwsMessageError(() => decode(at(4, 0xff)), "value"); // timestamp past 2^53
  });

  test("encode refuses values the wire cannot carry, with MessageError", () => {
    const st = { timestamp: 1, nonce: new Uint8Array(12) };
    throwsMessageError(() => encode({ type: "join", ta: GROUP, target: { ...targetAt(5), weight: 0 } }, st), "value");
    throwsMessageError(() => encode({ type: "join", ta: GROUP, target: { ...targetAt(5), label: "a\nb" } }, st), "value");
    throwsMessageError(() => encode({ type: "join", ta: GROUP, target: { ...targetAt(5), label: "x".repeat(65) } }, st), "value");
    throwsMessageError(() => encode({ type: "join", ta: { ...GROUP, protocol: "icmp" }, target: targetAt(5) }, st), "value");
    throwsMessageError(() => encode({ type: "join", ta: GROUP, target: targetAt(5) }, { timestamp: 1, nonce: new Uint8Array(8) }), "value");
    throwsMessageError(() => encode({ type: "join", ta: { ...GROUP, address: new Uint8Array(5) }, target: targetAt(5) }, st), "value");
    throwsMessageError(
      () => encode({ type: "heartbeat", from: { id: "", endpoint: targetAt(1).endpoint }, incarnation: 1, known: [] }, st),
      "value",
    );
  });
});

describe("map keys of TAs and endpoints", () => {
  test("taFromId(taId(ta)) and epFromId(epId(ep)) give back the value, and distinct values have distinct ids", async () => {
    const { taId, taFromId, epId, epFromId } = await import("../../src/control/ta.js");
    const { ta, endpoint } = await import("./arbitraries.js");
    fc.assert(
      fc.property(ta(), ta(), endpoint(), (a, b, e) => {
        assert.deepEqual(taFromId(taId(a)), structuredClone(a));
        assert.deepEqual(epFromId(epId(e)), structuredClone(e));
        const same = a.protocol === b.protocol && a.port === b.port && Buffer.compare(Buffer.from(a.address), Buffer.from(b.address)) === 0;
        assert.equal(taId(a) === taId(b), same);
      }),
      { numRuns: RUNS },
    );
  });
});
