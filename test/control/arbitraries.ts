// fast-check arbitraries for control-plane values and messages, and small
// fixtures the control tests share.
import fc from "fast-check";
import type { Endpoint, TransportAddress } from "../../src/control/ta.js";
import type { JapEntry, Member, Message, MessageKind, ProxyRef, TargetInfo } from "../../src/control/message.js";
import { MAX_DISCOVER, MAX_EXCLUDE } from "../../src/control/message.js";

export const RUNS = Number(process.env.PIAS_FUZZ_RUNS) || 300;

export const address = (): fc.Arbitrary<Uint8Array> => fc.oneof(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.uint8Array({ minLength: 16, maxLength: 16 }));
export const port = (): fc.Arbitrary<number> => fc.integer({ min: 0, max: 65535 });
export const u32 = (): fc.Arbitrary<number> => fc.integer({ min: 0, max: 0xffffffff });

export const ta = (): fc.Arbitrary<TransportAddress> =>
  fc
    .record({ protocol: fc.constantFrom("tcp", "udp", "icmp") as fc.Arbitrary<"tcp" | "udp" | "icmp">, address: address(), port: port() })
    .map((t) => (t.protocol === "icmp" ? { ...t, port: 0 } : t));

export const endpoint = (): fc.Arbitrary<Endpoint> => fc.record({ address: address(), port: port() });

const utf8 = new TextEncoder();
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
const shortText = (maxBytes: number): fc.Arbitrary<string> =>
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 12 }).filter((s) => !CONTROL.test(s) && utf8.encode(s).length <= maxBytes);

export const label = (): fc.Arbitrary<string | null> => fc.option(shortText(64), { nil: null });
export const proxyId = (): fc.Arbitrary<string> => shortText(64);

export const target = (): fc.Arbitrary<TargetInfo> =>
  fc.record({ endpoint: endpoint(), weight: fc.integer({ min: 1, max: 65535 }), label: label(), aware: fc.boolean() });
export const proxy = (): fc.Arbitrary<ProxyRef> => fc.record({ id: proxyId(), endpoint: endpoint() });
const japs = (): fc.Arbitrary<JapEntry[]> => fc.array(fc.record({ proxy: proxy(), load: u32() }), { maxLength: 6 });
const exclude = (): fc.Arbitrary<Endpoint[]> => fc.array(endpoint(), { maxLength: Math.min(MAX_EXCLUDE, 5) });
const k = (): fc.Arbitrary<number> => fc.integer({ min: 1, max: MAX_DISCOVER });
const mode = () => fc.constantFrom("random", "nearest") as fc.Arbitrary<"random" | "nearest">;
const member = (): fc.Arbitrary<Member> => fc.record({ endpoint: endpoint(), label: label() });

/** One arbitrary per message kind. */
export const MESSAGES: Record<MessageKind, fc.Arbitrary<Message>> = {
  join: fc.record({ type: fc.constant("join" as const), ta: ta(), target: target() }),
  keepalive: fc.record({ type: fc.constant("keepalive" as const), ta: ta(), target: target() }),
  leave: fc.record({ type: fc.constant("leave" as const), ta: ta(), endpoint: endpoint() }),
  "join-ack": fc.oneof(
    fc.record({
      type: fc.constant("join-ack" as const),
      ta: ta(),
      endpoint: endpoint(),
      accepted: fc.constant(true),
      reason: fc.constant("none" as const),
      jap: proxy(),
      keepaliveInterval: fc.integer({ min: 1, max: 65535 }),
    }),
    fc.record({
      type: fc.constant("join-ack" as const),
      ta: ta(),
      endpoint: endpoint(),
      accepted: fc.constant(false),
      reason: fc.constantFrom("full", "family-mismatch", "bad-target", "shutting-down") as fc.Arbitrary<"full">,
      jap: proxy(),
      keepaliveInterval: fc.integer({ min: 0, max: 65535 }),
    }),
  ),
  discover: fc.record({ type: fc.constant("discover" as const), ta: ta(), k: k(), mode: mode(), exclude: exclude() }),
  "discover-reply": fc.record({ type: fc.constant("discover-reply" as const), ta: ta(), members: fc.array(member(), { maxLength: 5 }) }),
  register: fc.record({ type: fc.constant("register" as const), jap: proxy(), entries: fc.array(fc.record({ ta: ta(), load: u32() }), { maxLength: 6 }) }),
  refresh: fc.record({ type: fc.constant("refresh" as const), jap: proxy(), entries: fc.array(fc.record({ ta: ta(), load: u32() }), { maxLength: 6 }) }),
  unregister: fc.record({ type: fc.constant("unregister" as const), jap: proxy(), tas: fc.array(ta(), { maxLength: 6 }) }),
  lookup: fc.record({ type: fc.constant("lookup" as const), iap: proxy(), requestId: u32(), ta: ta() }),
  "lookup-reply": fc.record({ type: fc.constant("lookup-reply" as const), rap: proxy(), requestId: u32(), ta: ta(), ttl: u32(), japs: japs() }),
  push: fc.record({ type: fc.constant("push" as const), rap: proxy(), ta: ta(), ttl: u32(), japs: japs() }),
  heartbeat: fc.record({
    type: fc.constant("heartbeat" as const),
    from: proxy(),
    incarnation: u32(),
    known: fc.array(fc.record({ proxy: proxy(), incarnation: u32() }), { maxLength: 6 }),
  }),
  "overlay-heartbeat": fc.record({
    type: fc.constant("overlay-heartbeat" as const),
    from: proxy(),
    incarnation: u32(),
    known: fc.array(fc.record({ proxy: proxy(), incarnation: u32() }), { maxLength: 6 }),
  }),
  "discover-forward": fc.record({
    type: fc.constant("discover-forward" as const),
    from: proxy(),
    origin: endpoint(),
    hops: fc.integer({ min: 0, max: 255 }),
    ta: ta(),
    k: k(),
    mode: mode(),
    exclude: exclude(),
  }),
};

export const anyMessage = (): fc.Arbitrary<Message> => fc.oneof(...Object.values(MESSAGES));
export const stamp = () =>
  fc.record({ timestamp: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), nonce: fc.uint8Array({ minLength: 12, maxLength: 16 }) });

// ---------------------------------------------------------------- fixtures

export const ip4 = (a: number, b: number, c: number, d: number): Uint8Array => Uint8Array.of(a, b, c, d);
export const ep = (addr: Uint8Array, p: number): Endpoint => ({ address: addr, port: p });
export const GROUP: TransportAddress = { protocol: "tcp", address: ip4(203, 0, 113, 10), port: 80 };
export const GROUP_B: TransportAddress = { protocol: "udp", address: ip4(203, 0, 113, 11), port: 53 };
export const KEY = new Uint8Array(32).fill(7);
export const KEY_B = new Uint8Array(32).fill(9);
export const CLUSTER = new Uint8Array(32).fill(1);
export const targetAt = (last: number, port = 8080, extra: Partial<TargetInfo> = {}): TargetInfo => ({
  endpoint: ep(ip4(10, 0, 0, last), port),
  weight: 1,
  label: null,
  aware: false,
  ...extra,
});

/** A deterministic PRNG in [0, 1) (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
