// The control plane's binary wire format: one UDP datagram = one frame.
//
//   off  size  field
//   0    2     magic 0x50 0x49 ("PI")
//   2    1     version (1)
//   3    1     type (MessageType)
//   4    8     timestamp, ms since the epoch, big-endian, at most 2^53-1
//   12   1     nonce length N, 12..16
//   13   N     nonce (random)
//   13+N ...   body (per type, below)
//   end-32 32  HMAC-SHA-256 over every byte before it (filled by auth.ts)
//
// Types below 16 are between a target (or peer) and a proxy and are keyed by
// the group's join key; every such body starts with the group's TA so the
// receiver can find the key before checking the MAC. Types from 16 up are
// between proxies and keyed by the cluster key.
//
// Field encodings: TA = u8 protocol (6 tcp, 17 udp, 1 icmp), u8 family (4|6),
// 4 or 16 address bytes, u16 port (0 for icmp). Endpoint = u8 family, address,
// u16 port. Text = u8 byte length + UTF-8 (no control characters). Proxy =
// text id (1..64 bytes) + endpoint. Lists carry a u8 or u16 count first.
//
// decode() checks every length and value and throws only MessageError: a
// datagram from the Internet must never crash the proxy or be half-read.
// Nothing here signs or verifies; see auth.ts.

import { PiasError } from "../errors.js";
import type { Endpoint, Protocol, TransportAddress } from "./ta.js";

export const MAGIC = 0x5049;
export const VERSION = 1;
export const MAC_LENGTH = 32;
export const NONCE_MIN = 12;
export const NONCE_MAX = 16;
/** Bytes before the nonce. */
export const HEADER_FIXED = 13;
/** Largest frame encode() produces (the largest UDP payload over IPv4). */
export const MAX_FRAME = 65507;
export const MAX_ID_BYTES = 64;
export const MAX_LABEL_BYTES = 64;
/** Largest `k` a discovery query may ask for, and longest exclude list. */
export const MAX_DISCOVER = 64;
export const MAX_EXCLUDE = 64;
/** Longest list of JAPs, proxies or batch entries in one message. */
export const MAX_LIST = 4096;

export const MessageType = {
  Join: 1,
  Leave: 2,
  Keepalive: 3,
  JoinAck: 4,
  Discover: 5,
  DiscoverReply: 6,
  Register: 16,
  Unregister: 17,
  Refresh: 18,
  Lookup: 19,
  LookupReply: 20,
  Push: 21,
  Heartbeat: 22,
  DiscoverForward: 23,
  OverlayHeartbeat: 24,
} as const;
export type MessageTypeCode = (typeof MessageType)[keyof typeof MessageType];

export const TYPE_NAMES: Readonly<Record<number, MessageKind>> = {
  1: "join",
  2: "leave",
  3: "keepalive",
  4: "join-ack",
  5: "discover",
  6: "discover-reply",
  16: "register",
  17: "unregister",
  18: "refresh",
  19: "lookup",
  20: "lookup-reply",
  21: "push",
  22: "heartbeat",
  23: "discover-forward",
  24: "overlay-heartbeat",
};

/** Group-keyed (target <-> proxy) types are below this; cluster-keyed (proxy <-> proxy) from it up. */
export const FIRST_CLUSTER_TYPE = 16;

// ---------------------------------------------------------------- values

/** A target as it announces itself. */
export interface TargetInfo {
  readonly endpoint: Endpoint;
  /** 1..65535. */
  readonly weight: number;
  /** null = no label. */
  readonly label: string | null;
  /** PIAS-aware: reached through IP-in-IP, answers clients itself. */
  readonly aware: boolean;
}

/** A proxy: its id on the hash ring and its unicast control endpoint (also its tunnel address). */
export interface ProxyRef {
  readonly id: string;
  readonly endpoint: Endpoint;
}

/** A JAP of a group as the RAP knows it. */
export interface JapEntry {
  readonly proxy: ProxyRef;
  /** The JAP's load figure for the group (targets or active flows). */
  readonly load: number;
}

export interface LoadEntry {
  readonly ta: TransportAddress;
  readonly load: number;
}

export interface PeerEntry {
  readonly proxy: ProxyRef;
  readonly incarnation: number;
}

export interface Member {
  readonly endpoint: Endpoint;
  readonly label: string | null;
}

export type DiscoverMode = "random" | "nearest";

export const JoinStatus = { Accepted: 0, Rejected: 1 } as const;
/**
 * Why a JAP refused a join (the wire carries the index: only append).
 * "dataplane-full": the data plane had no room for the target (its target
 * table or memory); "install-failed": the data plane refused it otherwise.
 */
export type RejectCode = "none" | "full" | "family-mismatch" | "bad-target" | "shutting-down" | "dataplane-full" | "install-failed";
export const REJECT_CODES: readonly RejectCode[] = ["none", "full", "family-mismatch", "bad-target", "shutting-down", "dataplane-full", "install-failed"];

// ---------------------------------------------------------------- messages

export interface JoinMessage { readonly type: "join"; readonly ta: TransportAddress; readonly target: TargetInfo }
/** Same body as JOIN: a JAP that does not know the target treats it as a join (the nearest proxy may change). */
export interface KeepaliveMessage { readonly type: "keepalive"; readonly ta: TransportAddress; readonly target: TargetInfo }
export interface LeaveMessage { readonly type: "leave"; readonly ta: TransportAddress; readonly endpoint: Endpoint }
export interface JoinAckMessage {
  readonly type: "join-ack";
  readonly ta: TransportAddress;
  readonly endpoint: Endpoint;
  readonly accepted: boolean;
  /** "none" when accepted. */
  readonly reason: RejectCode;
  readonly jap: ProxyRef;
  /** Seconds between keepalives, 1..65535 (0 only in a rejection). */
  readonly keepaliveInterval: number;
}
export interface DiscoverMessage {
  readonly type: "discover";
  readonly ta: TransportAddress;
  /** 1..MAX_DISCOVER members wanted. */
  readonly k: number;
  readonly mode: DiscoverMode;
  readonly exclude: readonly Endpoint[];
}
export interface DiscoverReplyMessage { readonly type: "discover-reply"; readonly ta: TransportAddress; readonly members: readonly Member[] }
export interface RegisterMessage { readonly type: "register"; readonly jap: ProxyRef; readonly entries: readonly LoadEntry[] }
export interface RefreshMessage { readonly type: "refresh"; readonly jap: ProxyRef; readonly entries: readonly LoadEntry[] }
export interface UnregisterMessage { readonly type: "unregister"; readonly jap: ProxyRef; readonly tas: readonly TransportAddress[] }
export interface LookupMessage { readonly type: "lookup"; readonly iap: ProxyRef; readonly requestId: number; readonly ta: TransportAddress }
export interface LookupReplyMessage {
  readonly type: "lookup-reply";
  readonly rap: ProxyRef;
  readonly requestId: number;
  readonly ta: TransportAddress;
  /** Seconds the IAP may cache the answer without hearing a push. */
  readonly ttl: number;
  readonly japs: readonly JapEntry[];
}
export interface PushMessage { readonly type: "push"; readonly rap: ProxyRef; readonly ta: TransportAddress; readonly ttl: number; readonly japs: readonly JapEntry[] }
export interface HeartbeatMessage { readonly type: "heartbeat"; readonly from: ProxyRef; readonly incarnation: number; readonly known: readonly PeerEntry[] }
/** The overlay nodes' own heartbeat ring (src/control/overlay.ts): the body of a HEARTBEAT, `known` being live overlay nodes. */
export interface OverlayHeartbeatMessage { readonly type: "overlay-heartbeat"; readonly from: ProxyRef; readonly incarnation: number; readonly known: readonly PeerEntry[] }
export interface DiscoverForwardMessage {
  readonly type: "discover-forward";
  readonly from: ProxyRef;
  /** The peer that asked: the answer goes straight to it. */
  readonly origin: Endpoint;
  /** Forwards left after this one. */
  readonly hops: number;
  readonly ta: TransportAddress;
  readonly k: number;
  readonly mode: DiscoverMode;
  readonly exclude: readonly Endpoint[];
}

export type TargetMessage = JoinMessage | KeepaliveMessage | LeaveMessage | JoinAckMessage | DiscoverMessage | DiscoverReplyMessage;
export type ProxyMessage =
  | RegisterMessage
  | RefreshMessage
  | UnregisterMessage
  | LookupMessage
  | LookupReplyMessage
  | PushMessage
  | HeartbeatMessage
  | DiscoverForwardMessage
  | OverlayHeartbeatMessage;
export type Message = TargetMessage | ProxyMessage;
export type MessageKind = Message["type"];

export const MESSAGE_KINDS: readonly MessageKind[] = Object.values(TYPE_NAMES);

const CODE_OF: Record<MessageKind, number> = Object.fromEntries(Object.entries(TYPE_NAMES).map(([code, kind]) => [kind, Number(code)])) as Record<
  MessageKind,
  number
>;

export function typeCode(kind: MessageKind): number {
  return CODE_OF[kind];
}

/** True for the target <-> proxy kinds, keyed by the group's join key. */
export function isGroupKeyed(kind: MessageKind): kind is TargetMessage["type"] {
  return CODE_OF[kind] < FIRST_CLUSTER_TYPE;
}

/** A frame's replay-protection fields. */
export interface Stamp {
  /** ms since the epoch. */
  readonly timestamp: number;
  /** NONCE_MIN..NONCE_MAX random bytes. */
  readonly nonce: Uint8Array;
}

export interface Decoded {
  readonly message: Message;
  readonly stamp: Stamp;
}

// ---------------------------------------------------------------- errors

export type MessageErrorReason = "truncated" | "trailing" | "magic" | "version" | "type" | "value" | "too-large";

/** A frame is malformed (decode) or a message cannot be encoded (encode). */
export class MessageError extends PiasError {
  constructor(
    readonly reason: MessageErrorReason,
    message: string,
  ) {
    super("EMESSAGE", message);
  }
}

// ---------------------------------------------------------------- writer

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

const EMPTY = new Uint8Array(0);
const PROTO_CODE: Record<Protocol, number> = { tcp: 6, udp: 17, icmp: 1 };
const PROTO_OF: Record<number, Protocol> = { 6: "tcp", 17: "udp", 1: "icmp" };
const MODES: readonly DiscoverMode[] = ["random", "nearest"];

/**
 * Writes a frame into one scratch buffer shared by every encode() (encode is
 * synchronous and never re-entered), so encoding allocates only the result.
 */
class Writer {
  private readonly buf = new Uint8Array(MAX_FRAME);
  private readonly view = new DataView(this.buf.buffer);
  length = 0;

  reset(): void {
    this.length = 0;
  }

  private room(n: number): void {
    if (this.length + n > MAX_FRAME) throw new MessageError("too-large", `a control frame is at most ${MAX_FRAME} bytes`);
  }

  u8(v: number): void {
    this.room(1);
    this.buf[this.length++] = v;
  }
  u16(v: number): void {
    this.room(2);
    this.view.setUint16(this.length, v);
    this.length += 2;
  }
  u32(v: number): void {
    this.room(4);
    this.view.setUint32(this.length, v);
    this.length += 4;
  }
  u64(v: number): void {
    this.room(8);
    this.view.setUint32(this.length, Math.floor(v / 0x100000000));
    this.view.setUint32(this.length + 4, v >>> 0);
    this.length += 8;
  }
  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  zeros(n: number): void {
    this.room(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
  }
  /** A copy of the frame, carved from a shared 64 KiB chunk: a fresh ArrayBuffer per frame costs more than encoding it. */
  finish(): Uint8Array {
    const n = this.length;
    if (chunkAt + n > chunk.byteLength) {
      chunk = new ArrayBuffer(Math.max(CHUNK, n));
      chunkAt = 0;
    }
    const out = new Uint8Array(chunk, chunkAt, n);
    out.set(this.buf.subarray(0, n));
    chunkAt += (n + 7) & ~7;
    return out;
  }
}

const CHUNK = 65536;
let chunk = new ArrayBuffer(CHUNK);
let chunkAt = 0;

const writer = new Writer();

/**
 * UTF-8 bytes of the short texts frames carry (proxy ids, labels): the same
 * few strings are encoded over and over, so they are cached (bounded).
 */
const textCache = new Map<string, Uint8Array>();
function utf8Of(s: string): Uint8Array {
  let b = textCache.get(s);
  if (b === undefined) {
    b = utf8.encode(s);
    if (textCache.size >= 4096) textCache.clear();
    textCache.set(s, b);
  }
  return b;
}

function bad(what: string): never {
  throw new MessageError("value", what);
}

function checkInt(v: number, min: number, max: number, what: string): void {
  if (!Number.isInteger(v) || v < min || v > max) bad(`${what} must be an integer ${min}..${max}, got ${String(v)}`);
}

function checkAddress(a: Uint8Array, what: string): void {
  if (!(a instanceof Uint8Array) || (a.length !== 4 && a.length !== 16)) bad(`${what} must be 4 or 16 bytes`);
}

function putText(w: Writer, s: string | null, min: number, max: number, what: string): void {
  const b = s === null ? EMPTY : utf8Of(s);
  if (s !== null && (b.length === 0 || CONTROL.test(s))) bad(`${what} must be non-empty text without control characters`);
  if (b.length < min || b.length > max) bad(`${what} must be ${min}..${max} bytes of UTF-8, got ${b.length}`);
  w.u8(b.length);
  w.bytes(b);
}

function putTa(w: Writer, ta: TransportAddress): void {
  const code = PROTO_CODE[ta.protocol];
  if (code === undefined) bad(`unknown protocol ${String(ta.protocol)}`);
  checkAddress(ta.address, "a TA address");
  checkInt(ta.port, 0, 65535, "a TA port");
  if (ta.protocol === "icmp" && ta.port !== 0) bad("an icmp TA has port 0");
  w.u8(code);
  w.u8(ta.address.length === 4 ? 4 : 6);
  w.bytes(ta.address);
  w.u16(ta.port);
}

function putEndpoint(w: Writer, ep: Endpoint): void {
  checkAddress(ep.address, "an endpoint address");
  checkInt(ep.port, 0, 65535, "an endpoint port");
  w.u8(ep.address.length === 4 ? 4 : 6);
  w.bytes(ep.address);
  w.u16(ep.port);
}

function putProxy(w: Writer, p: ProxyRef): void {
  putText(w, p.id, 1, MAX_ID_BYTES, "a proxy id");
  putEndpoint(w, p.endpoint);
}

function putCount(w: Writer, n: number, max: number, wide: boolean, what: string): void {
  checkInt(n, 0, max, `the number of ${what}`);
  if (wide) w.u16(n);
  else w.u8(n);
}

function putTarget(w: Writer, t: TargetInfo): void {
  putEndpoint(w, t.endpoint);
  checkInt(t.weight, 1, 65535, "a target weight");
  w.u16(t.weight);
  w.u8(t.aware ? 1 : 0);
  putText(w, t.label, 0, MAX_LABEL_BYTES, "a target label");
}

function putJaps(w: Writer, japs: readonly JapEntry[]): void {
  putCount(w, japs.length, MAX_LIST, true, "JAPs");
  for (const j of japs) {
    putProxy(w, j.proxy);
    checkInt(j.load, 0, 0xffffffff, "a load figure");
    w.u32(j.load);
  }
}

function putDiscovery(w: Writer, k: number, mode: DiscoverMode, exclude: readonly Endpoint[]): void {
  checkInt(k, 1, MAX_DISCOVER, "k");
  const m = MODES.indexOf(mode);
  if (m < 0) bad(`unknown discovery mode ${String(mode)}`);
  w.u8(k);
  w.u8(m);
  putCount(w, exclude.length, MAX_EXCLUDE, false, "excluded members");
  for (const e of exclude) putEndpoint(w, e);
}

function putBody(w: Writer, m: Message): void {
  switch (m.type) {
    case "join":
    case "keepalive":
      putTa(w, m.ta);
      putTarget(w, m.target);
      return;
    case "leave":
      putTa(w, m.ta);
      putEndpoint(w, m.endpoint);
      return;
    case "join-ack": {
      putTa(w, m.ta);
      putEndpoint(w, m.endpoint);
      const r = REJECT_CODES.indexOf(m.reason);
      if (r < 0) bad(`unknown reject reason ${String(m.reason)}`);
      if (m.accepted !== (r === 0)) bad("an accepted join has reason none, a rejected one another reason");
      w.u8(m.accepted ? JoinStatus.Accepted : JoinStatus.Rejected);
      w.u8(r);
      putProxy(w, m.jap);
      checkInt(m.keepaliveInterval, m.accepted ? 1 : 0, 65535, "the keepalive interval");
      w.u16(m.keepaliveInterval);
      return;
    }
    case "discover":
      putTa(w, m.ta);
      putDiscovery(w, m.k, m.mode, m.exclude);
      return;
    case "discover-reply":
      putTa(w, m.ta);
      putCount(w, m.members.length, MAX_DISCOVER, false, "members");
      for (const x of m.members) {
        putEndpoint(w, x.endpoint);
        putText(w, x.label, 0, MAX_LABEL_BYTES, "a member label");
      }
      return;
    case "register":
    case "refresh":
      putProxy(w, m.jap);
      putCount(w, m.entries.length, MAX_LIST, true, "entries");
      for (const e of m.entries) {
        putTa(w, e.ta);
        checkInt(e.load, 0, 0xffffffff, "a load figure");
        w.u32(e.load);
      }
      return;
    case "unregister":
      putProxy(w, m.jap);
      putCount(w, m.tas.length, MAX_LIST, true, "TAs");
      for (const ta of m.tas) putTa(w, ta);
      return;
    case "lookup":
      putProxy(w, m.iap);
      checkInt(m.requestId, 0, 0xffffffff, "a request id");
      w.u32(m.requestId);
      putTa(w, m.ta);
      return;
    case "lookup-reply":
      putProxy(w, m.rap);
      checkInt(m.requestId, 0, 0xffffffff, "a request id");
      w.u32(m.requestId);
      putTa(w, m.ta);
      checkInt(m.ttl, 0, 0xffffffff, "a TTL");
      w.u32(m.ttl);
      putJaps(w, m.japs);
      return;
    case "push":
      putProxy(w, m.rap);
      putTa(w, m.ta);
      checkInt(m.ttl, 0, 0xffffffff, "a TTL");
      w.u32(m.ttl);
      putJaps(w, m.japs);
      return;
    case "heartbeat":
    case "overlay-heartbeat":
      putProxy(w, m.from);
      checkInt(m.incarnation, 0, 0xffffffff, "an incarnation");
      w.u32(m.incarnation);
      putCount(w, m.known.length, MAX_LIST, true, "known proxies");
      for (const p of m.known) {
        putProxy(w, p.proxy);
        checkInt(p.incarnation, 0, 0xffffffff, "an incarnation");
        w.u32(p.incarnation);
      }
      return;
    case "discover-forward":
      putProxy(w, m.from);
      putEndpoint(w, m.origin);
      checkInt(m.hops, 0, 255, "hops");
      w.u8(m.hops);
      putTa(w, m.ta);
      putDiscovery(w, m.k, m.mode, m.exclude);
      return;
    default:
      bad(`unknown message type ${String((m as { type?: unknown }).type)}`);
  }
}

/**
 * Encode a message with its stamp into a frame whose last MAC_LENGTH bytes are
 * zero, ready for auth.ts to fill. Throws MessageError if a field is out of range.
 * The frame is a view that may share its ArrayBuffer with other frames: use its
 * byteOffset and byteLength (as dgram's send() does), never `frame.buffer` alone.
 */
export function encode(message: Message, stamp: Stamp): Uint8Array {
  const w = writer;
  w.reset();
  const code = CODE_OF[message.type];
  if (code === undefined) bad(`unknown message type ${String(message.type)}`);
  checkInt(stamp.timestamp, 0, Number.MAX_SAFE_INTEGER, "the timestamp");
  if (!(stamp.nonce instanceof Uint8Array) || stamp.nonce.length < NONCE_MIN || stamp.nonce.length > NONCE_MAX) {
    bad(`the nonce must be ${NONCE_MIN}..${NONCE_MAX} bytes`);
  }
  w.u16(MAGIC);
  w.u8(VERSION);
  w.u8(code);
  w.u64(stamp.timestamp);
  w.u8(stamp.nonce.length);
  w.bytes(stamp.nonce);
  putBody(w, message);
  w.zeros(MAC_LENGTH);
  return w.finish();
}

// ---------------------------------------------------------------- reader

class Reader {
  private readonly view: DataView;
  at = 0;
  constructor(
    private readonly buf: Uint8Array,
    /** Bytes past this are the MAC. */
    readonly end: number,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  need(n: number, what: string): void {
    if (this.at + n > this.end) throw new MessageError("truncated", `truncated frame: ${what} needs ${n} bytes at offset ${this.at}, ${this.end - this.at} left`);
  }
  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.at++];
  }
  u16(what: string): number {
    this.need(2, what);
    const v = this.view.getUint16(this.at);
    this.at += 2;
    return v;
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.at);
    this.at += 4;
    return v;
  }
  bytes(n: number, what: string): Uint8Array {
    this.need(n, what);
    const b = this.buf.slice(this.at, this.at + n);
    this.at += n;
    return b;
  }
}

function text(r: Reader, min: number, max: number, what: string): string | null {
  const n = r.u8(`${what} length`);
  if (n < min || n > max) bad(`${what} is ${n} bytes, expected ${min}..${max}`);
  if (n === 0) return null;
  const b = r.bytes(n, what);
  let s: string;
  try {
    s = utf8Strict.decode(b);
  } catch {
    return bad(`${what} is not UTF-8`);
  }
  if (CONTROL.test(s)) bad(`${what} contains a control character`);
  return s;
}

function family(r: Reader, what: string): number {
  const f = r.u8(`${what} family`);
  if (f !== 4 && f !== 6) bad(`${what} family ${f} is not 4 or 6`);
  return f === 4 ? 4 : 16;
}

function getTa(r: Reader): TransportAddress {
  const code = r.u8("TA protocol");
  const protocol = PROTO_OF[code];
  if (protocol === undefined) bad(`TA protocol ${code} is not tcp (6), udp (17) or icmp (1)`);
  const address = r.bytes(family(r, "TA"), "TA address");
  const port = r.u16("TA port");
  if (protocol === "icmp" && port !== 0) bad("an icmp TA has port 0");
  return { protocol, address, port };
}

function getEndpoint(r: Reader, what = "endpoint"): Endpoint {
  const address = r.bytes(family(r, what), `${what} address`);
  const port = r.u16(`${what} port`);
  return { address, port };
}

function getProxy(r: Reader): ProxyRef {
  const id = text(r, 1, MAX_ID_BYTES, "proxy id") as string;
  return { id, endpoint: getEndpoint(r, "proxy endpoint") };
}

function count(r: Reader, max: number, wide: boolean, what: string): number {
  const n = wide ? r.u16(`number of ${what}`) : r.u8(`number of ${what}`);
  if (n > max) bad(`${n} ${what}, at most ${max}`);
  return n;
}

function getTarget(r: Reader): TargetInfo {
  const endpoint = getEndpoint(r, "target");
  const weight = r.u16("weight");
  if (weight === 0) bad("a target weight is at least 1");
  const flags = r.u8("flags");
  if (flags > 1) bad(`unknown target flags 0x${flags.toString(16)}`);
  const label = text(r, 0, MAX_LABEL_BYTES, "label");
  return { endpoint, weight, label, aware: flags === 1 };
}

function getJaps(r: Reader): JapEntry[] {
  const n = count(r, MAX_LIST, true, "JAPs");
  const out: JapEntry[] = [];
  for (let i = 0; i < n; i++) {
    const proxy = getProxy(r);
    out.push({ proxy, load: r.u32("load") });
  }
  return out;
}

function getDiscovery(r: Reader): { k: number; mode: DiscoverMode; exclude: Endpoint[] } {
  const k = r.u8("k");
  if (k < 1 || k > MAX_DISCOVER) bad(`k ${k} is not 1..${MAX_DISCOVER}`);
  const m = r.u8("mode");
  const mode = MODES[m];
  if (mode === undefined) bad(`unknown discovery mode ${m}`);
  const n = count(r, MAX_EXCLUDE, false, "excluded members");
  const exclude: Endpoint[] = [];
  for (let i = 0; i < n; i++) exclude.push(getEndpoint(r, "excluded member"));
  return { k, mode, exclude };
}

function getBody(r: Reader, kind: MessageKind): Message {
  switch (kind) {
    case "join":
    case "keepalive":
      return { type: kind, ta: getTa(r), target: getTarget(r) };
    case "leave":
      return { type: kind, ta: getTa(r), endpoint: getEndpoint(r, "target") };
    case "join-ack": {
      const ta = getTa(r);
      const endpoint = getEndpoint(r, "target");
      const status = r.u8("status");
      if (status !== JoinStatus.Accepted && status !== JoinStatus.Rejected) bad(`join status ${status} is not 0 or 1`);
      const code = r.u8("reason");
      const reason = REJECT_CODES[code];
      if (reason === undefined) bad(`unknown reject reason ${code}`);
      const accepted = status === JoinStatus.Accepted;
      if (accepted !== (code === 0)) bad("an accepted join has reason none, a rejected one another reason");
      const jap = getProxy(r);
      const keepaliveInterval = r.u16("keepalive interval");
      if (accepted && keepaliveInterval === 0) bad("an accepted join has a keepalive interval of at least 1 s");
      return { type: kind, ta, endpoint, accepted, reason, jap, keepaliveInterval };
    }
    case "discover": {
      const ta = getTa(r);
      return { type: kind, ta, ...getDiscovery(r) };
    }
    case "discover-reply": {
      const ta = getTa(r);
      const n = count(r, MAX_DISCOVER, false, "members");
      const members: Member[] = [];
      for (let i = 0; i < n; i++) {
        const endpoint = getEndpoint(r, "member");
        members.push({ endpoint, label: text(r, 0, MAX_LABEL_BYTES, "member label") });
      }
      return { type: kind, ta, members };
    }
    case "register":
    case "refresh": {
      const jap = getProxy(r);
      const n = count(r, MAX_LIST, true, "entries");
      const entries: LoadEntry[] = [];
      for (let i = 0; i < n; i++) {
        const ta = getTa(r);
        entries.push({ ta, load: r.u32("load") });
      }
      return { type: kind, jap, entries };
    }
    case "unregister": {
      const jap = getProxy(r);
      const n = count(r, MAX_LIST, true, "TAs");
      const tas: TransportAddress[] = [];
      for (let i = 0; i < n; i++) tas.push(getTa(r));
      return { type: kind, jap, tas };
    }
    case "lookup": {
      const iap = getProxy(r);
      const requestId = r.u32("request id");
      return { type: kind, iap, requestId, ta: getTa(r) };
    }
    case "lookup-reply": {
      const rap = getProxy(r);
      const requestId = r.u32("request id");
      const ta = getTa(r);
      const ttl = r.u32("TTL");
      return { type: kind, rap, requestId, ta, ttl, japs: getJaps(r) };
    }
    case "push": {
      const rap = getProxy(r);
      const ta = getTa(r);
      const ttl = r.u32("TTL");
      return { type: kind, rap, ta, ttl, japs: getJaps(r) };
    }
    case "heartbeat":
    case "overlay-heartbeat": {
      const from = getProxy(r);
      const incarnation = r.u32("incarnation");
      const n = count(r, MAX_LIST, true, "known proxies");
      const known: PeerEntry[] = [];
      for (let i = 0; i < n; i++) {
        const proxy = getProxy(r);
        known.push({ proxy, incarnation: r.u32("incarnation") });
      }
      return { type: kind, from, incarnation, known };
    }
    case "discover-forward": {
      const from = getProxy(r);
      const origin = getEndpoint(r, "origin");
      const hops = r.u8("hops");
      const ta = getTa(r);
      return { type: kind, from, origin, hops, ta, ...getDiscovery(r) };
    }
  }
}

/** The kind of a frame from its header alone, or undefined when the header is not a pias control header. */
export function peekKind(frame: Uint8Array): MessageKind | undefined {
  if (frame.length < 4 || ((frame[0] << 8) | frame[1]) !== MAGIC || frame[2] !== VERSION) return undefined;
  return TYPE_NAMES[frame[3]];
}

/**
 * Decode a whole frame (header, body and the MAC_LENGTH-byte MAC at the end,
 * which is not checked here). Throws MessageError, and nothing else, for any
 * input that is not exactly one well-formed frame.
 */
export function decode(frame: Uint8Array): Decoded {
  if (!(frame instanceof Uint8Array)) throw new MessageError("value", "a frame is a Uint8Array");
  if (frame.length < HEADER_FIXED + NONCE_MIN + MAC_LENGTH) {
    throw new MessageError("truncated", `truncated frame: ${frame.length} bytes, at least ${HEADER_FIXED + NONCE_MIN + MAC_LENGTH} needed`);
  }
  if (frame.length > MAX_FRAME) throw new MessageError("too-large", `a control frame is at most ${MAX_FRAME} bytes`);
  const r = new Reader(frame, frame.length - MAC_LENGTH);
  if (r.u16("magic") !== MAGIC) throw new MessageError("magic", "not a pias control frame (bad magic)");
  const version = r.u8("version");
  if (version !== VERSION) throw new MessageError("version", `unsupported control frame version ${version}`);
  const code = r.u8("type");
  const kind = TYPE_NAMES[code];
  if (kind === undefined) throw new MessageError("type", `unknown control message type ${code}`);
  const hi = r.u32("timestamp");
  const lo = r.u32("timestamp");
  if (hi > 0x1fffff) bad("timestamp is past 2^53 ms");
  const timestamp = hi * 0x100000000 + lo;
  const n = r.u8("nonce length");
  if (n < NONCE_MIN || n > NONCE_MAX) bad(`nonce length ${n} is not ${NONCE_MIN}..${NONCE_MAX}`);
  const nonce = r.bytes(n, "nonce");
  const message = getBody(r, kind);
  if (r.at !== r.end) throw new MessageError("trailing", `${r.end - r.at} trailing bytes after a ${kind} body`);
  return { message, stamp: { timestamp, nonce } };
}

/** The group a target <-> proxy message is about (every such body starts with its TA). */
export function groupOf(message: TargetMessage): TransportAddress {
  return message.ta;
}
