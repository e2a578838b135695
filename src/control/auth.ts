// Authentication of control frames: HMAC-SHA-256 over the whole frame with a
// timestamp and a random nonce against replay.
//
// Target <-> proxy frames (JOIN, LEAVE, KEEPALIVE, JOIN_ACK, DISCOVER,
// DISCOVER_REPLY) are keyed by the group's join key: no key, no membership.
// Proxy <-> proxy frames are keyed by the cluster key. The key class follows
// from the type byte, so a frame signed with the cluster key can never pass as
// a join and a group key can never speak for a proxy.
//
// Verification order is cheapest first and never trusts a field before the MAC
// covering it is checked, except the TA used to find the group key:
// decode (malformed) -> key lookup (unknown-group) -> MAC (bad-mac) ->
// timestamp window (stale) -> replay cache (replayed).
//
// Key rotation: a key class may hold two keys for a while (KeySet). The first
// signs; a frame is accepted under any of them, and open() says which one, so
// an answer to a target can be signed with the key the target used.
//
// The replay cache is bounded. It forgets a nonce once its timestamp is out of
// the window (the window check rejects that frame anyway). When it is full it
// evicts the oldest entry and raises a floor: any frame stamped at or below the
// highest evicted timestamp is rejected as replayed, since the cache can no
// longer tell. So a full cache narrows the window instead of letting a replay
// through.

import * as crypto from "node:crypto";
import { createHmac, randomFillSync, timingSafeEqual } from "node:crypto";
import { decode, encode, isGroupKeyed, MAC_LENGTH, MessageError, type Decoded, type Message, type Stamp } from "./message.js";
import type { TransportAddress } from "./ta.js";

export const REJECT_REASONS = ["bad-mac", "stale", "replayed", "unknown-group", "malformed", "rate-limited"] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

export const DEFAULT_WINDOW_MS = 30_000;
export const DEFAULT_REPLAY_CAPACITY = 1 << 20;
export const NONCE_LENGTH = 16;

/** Counts of rejected frames by reason. */
export class Rejections {
  readonly counts: Record<RejectReason, number> = { "bad-mac": 0, stale: 0, replayed: 0, "unknown-group": 0, malformed: 0, "rate-limited": 0 };
  add(reason: RejectReason): void {
    this.counts[reason]++;
  }
  get total(): number {
    let n = 0;
    for (const r of REJECT_REASONS) n += this.counts[r];
    return n;
  }
}

// HMAC-SHA-256 (RFC 2104) on crypto.hash() where Node has it (20.12+): two
// one-shot hashes over a scratch buffer, digests taken as latin1 strings.
// createHmac() builds a C++ object per message whose weak handle every
// young-generation GC must then process, and a Buffer digest is a fresh
// off-heap ArrayBuffer; at tens of thousands of frames a second either costs
// more than the hashing itself.
type OneShot = (algorithm: string, data: Uint8Array, encoding: "latin1") => string;
const oneShot = (crypto as unknown as { hash?: OneShot }).hash;
const BLOCK = 64;
let scratch = new Uint8Array(2048);
const outer = new Uint8Array(BLOCK + 32);

/** HMAC-SHA-256 of `data` under `key`, as 32 latin1 characters. */
function hmacString(key: Uint8Array, data: Uint8Array): string {
  if (oneShot === undefined) return createHmac("sha256", key).update(data).digest().toString("latin1");
  let k = key;
  if (key.length > BLOCK) k = Buffer.from(oneShot("sha256", key, "latin1"), "latin1");
  if (scratch.length < BLOCK + data.length) scratch = new Uint8Array(BLOCK + data.length);
  for (let i = 0; i < BLOCK; i++) {
    const b = i < k.length ? k[i] : 0;
    scratch[i] = b ^ 0x36;
    outer[i] = b ^ 0x5c;
  }
  scratch.set(data, BLOCK);
  const inner = oneShot("sha256", scratch.subarray(0, BLOCK + data.length), "latin1");
  for (let i = 0; i < 32; i++) outer[BLOCK + i] = inner.charCodeAt(i);
  return oneShot("sha256", outer, "latin1");
}

/** HMAC-SHA-256 of `data` under `key`. */
export function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  const mac = hmacString(key, data);
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = mac.charCodeAt(i);
  return out;
}

/** The MAC of frame[0 .. length-32). */
export function computeMac(frame: Uint8Array, key: Uint8Array): Uint8Array {
  return hmacSha256(key, frame.subarray(0, frame.length - MAC_LENGTH));
}

/** Fill the last 32 bytes of an encoded frame with its MAC. */
export function signFrame(frame: Uint8Array, key: Uint8Array): Uint8Array {
  const mac = hmacString(key, frame.subarray(0, frame.length - MAC_LENGTH));
  const at = frame.length - MAC_LENGTH;
  for (let i = 0; i < 32; i++) frame[at + i] = mac.charCodeAt(i);
  return frame;
}

/** True when the frame's last 32 bytes are its MAC under `key` (constant-time comparison). */
export function macValid(frame: Uint8Array, key: Uint8Array): boolean {
  if (frame.length < MAC_LENGTH + 1) return false;
  const mac = hmacString(key, frame.subarray(0, frame.length - MAC_LENGTH));
  // Buffer.from of a short string comes from Node's pool: no ArrayBuffer per frame.
  return timingSafeEqual(Buffer.from(mac, "latin1"), frame.subarray(frame.length - MAC_LENGTH));
}

/** Random nonces drawn from a pooled buffer (one randomFillSync per 4096 nonces). */
export function pooledNonces(length = NONCE_LENGTH): () => Uint8Array {
  const pool = new Uint8Array(length * 4096);
  let at = pool.length;
  return () => {
    if (at + length > pool.length) {
      randomFillSync(pool);
      at = 0;
    }
    const n = pool.slice(at, at + length);
    at += length;
    return n;
  };
}

/**
 * Nonces seen within the window; see the module header for how it stays
 * bounded and safe. An open-addressing hash table in typed arrays keyed by the
 * nonce's first 96 bits (all random), with a ring of slots in arrival order:
 * a proxy hearing tens of thousands of frames a second keeps them without a
 * JavaScript object per nonce for the garbage collector to trace.
 */
export class ReplayCache {
  private size_ = 0;
  private tombs = 0;
  private mask = 0;
  private k0 = new Int32Array(0);
  private k1 = new Int32Array(0);
  private k2 = new Int32Array(0);
  private ts = new Float64Array(0);
  /** 0 empty, 1 used, 2 deleted. */
  private state = new Uint8Array(0);
  /** Slots in arrival order: ring[head .. head+size) (mod length). */
  private ring = new Int32Array(0);
  private head = 0;
  /** Frames stamped at or below this can no longer be told from replays. */
  private floor = -Infinity;
  evictions = 0;

  constructor(
    readonly windowMs: number = DEFAULT_WINDOW_MS,
    readonly capacity: number = DEFAULT_REPLAY_CAPACITY,
  ) {
    this.resize(16);
  }

  get size(): number {
    return this.size_;
  }

  /** Records (timestamp, nonce) and returns true if it is fresh; false if it was seen (or may have been). */
  check(timestamp: number, nonce: Uint8Array, now: number): boolean {
    this.expire(now);
    if (timestamp <= this.floor) return false;
    const a = word(nonce, 0);
    const b = word(nonce, 4);
    const c = word(nonce, 8);
    if (this.find(a, b, c) >= 0) return false;
    while (this.size_ >= this.capacity) {
      const slot = this.ring[this.head];
      if (this.ts[slot] > this.floor) this.floor = this.ts[slot];
      this.drop();
      this.evictions++;
    }
    if ((this.size_ + this.tombs + 1) * 5 > this.state.length * 3) this.resize(Math.max(16, 1 << Math.ceil(Math.log2((this.size_ + 1) * 3))));
    const slot = this.insert(a, b, c, timestamp);
    this.ring[(this.head + this.size_) % this.ring.length] = slot;
    this.size_++;
    return true;
  }

  /** Forget entries, oldest arrival first, while their timestamp is out of the window. */
  private expire(now: number): void {
    const limit = now - this.windowMs;
    while (this.size_ > 0 && this.ts[this.ring[this.head]] < limit) this.drop();
  }

  /** Delete the oldest entry. */
  private drop(): void {
    this.state[this.ring[this.head]] = 2;
    this.tombs++;
    this.size_--;
    this.head = (this.head + 1) % this.ring.length;
  }

  private find(a: number, b: number, c: number): number {
    for (let i = mix(a, b, c) & this.mask; ; i = (i + 1) & this.mask) {
      const st = this.state[i];
      if (st === 0) return -1;
      if (st === 1 && this.k0[i] === a && this.k1[i] === b && this.k2[i] === c) return i;
    }
  }

  private insert(a: number, b: number, c: number, timestamp: number): number {
    let i = mix(a, b, c) & this.mask;
    while (this.state[i] === 1) i = (i + 1) & this.mask;
    if (this.state[i] === 2) this.tombs--;
    this.state[i] = 1;
    this.k0[i] = a;
    this.k1[i] = b;
    this.k2[i] = c;
    this.ts[i] = timestamp;
    return i;
  }

  /** Rebuild into `slots` slots (a power of two), keeping arrival order and dropping deleted slots. */
  private resize(slots: number): void {
    const { k0, k1, k2, ts, ring, head, size_ } = this;
    const oldLen = ring.length;
    this.k0 = new Int32Array(slots);
    this.k1 = new Int32Array(slots);
    this.k2 = new Int32Array(slots);
    this.ts = new Float64Array(slots);
    this.state = new Uint8Array(slots);
    this.ring = new Int32Array(slots);
    this.mask = slots - 1;
    this.tombs = 0;
    this.head = 0;
    for (let n = 0; n < size_; n++) {
      const old = ring[(head + n) % oldLen];
      this.ring[n] = this.insert(k0[old], k1[old], k2[old], ts[old]);
    }
  }
}

function word(b: Uint8Array, at: number): number {
  return (b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3];
}

function mix(a: number, b: number, c: number): number {
  let h = Math.imul(a ^ (b >>> 15), 0x85ebca6b) ^ Math.imul(c, 0xc2b2ae35);
  h ^= h >>> 13;
  return Math.imul(h, 0x27d4eb2f) ^ (h >>> 16);
}

/** The keys of one class: the first signs, every one is accepted (two during a key rotation). */
export type KeySet = Uint8Array | readonly Uint8Array[];

export interface AuthenticatorOptions {
  /** Key(s) of proxy <-> proxy frames; undefined: this side handles no proxy frames (a target). */
  readonly clusterKey?: KeySet;
  /** The join key(s) of a group, or undefined when this side has none. */
  readonly groupKey: (ta: TransportAddress) => KeySet | undefined;
  readonly now: () => number;
  /** Accepted clock difference either way, ms. Default 30 s. */
  readonly windowMs?: number;
  readonly replayCapacity?: number;
  readonly nonce?: () => Uint8Array;
}

/** An accepted frame says which of its class's keys verified it (0: the signing key). */
export type Opened =
  | { readonly ok: true; readonly message: Message; readonly stamp: Stamp; readonly keyIndex: number }
  | { readonly ok: false; readonly reason: RejectReason; readonly detail?: string };

const keyCount = (k: KeySet): number => (k instanceof Uint8Array ? 1 : k.length);
const keyAt = (k: KeySet, i: number): Uint8Array => (k instanceof Uint8Array ? k : k[i]);

/** Seals outgoing messages and opens incoming frames for one node (a proxy or a target). */
export class Authenticator {
  readonly rejections = new Rejections();
  readonly replay: ReplayCache;
  private readonly windowMs: number;
  private readonly nonce: () => Uint8Array;
  private clusterKey: KeySet | undefined;

  constructor(private readonly opts: AuthenticatorOptions) {
    this.windowMs = opts.windowMs ?? DEFAULT_WINDOW_MS;
    this.replay = new ReplayCache(this.windowMs, opts.replayCapacity ?? DEFAULT_REPLAY_CAPACITY);
    this.nonce = opts.nonce ?? pooledNonces();
    this.clusterKey = opts.clusterKey;
  }

  /** Replace the cluster key(s), e.g. during a rotation: frames already in flight under a dropped key are rejected. */
  setClusterKey(keys: KeySet): void {
    this.clusterKey = keys;
  }

  /** The keys of a message of this kind about this group (the first signs), or undefined. */
  keysFor(message: Message): KeySet | undefined {
    const keys = isGroupKeyed(message.type) ? this.opts.groupKey((message as { ta: TransportAddress }).ta) : this.clusterKey;
    return keys === undefined || keyCount(keys) === 0 ? undefined : keys;
  }

  /**
   * Encode, stamp (now, fresh nonce) and sign, with the class's signing key or
   * its key number `keyIndex` (an answer signed with the key its question came
   * with). Throws MessageError when the message is invalid or no key is known.
   */
  seal(message: Message, keyIndex = 0): Uint8Array {
    const keys = this.keysFor(message);
    if (keys === undefined) throw new MessageError("value", `no key to sign a ${message.type} message`);
    const key = keyAt(keys, keyIndex < keyCount(keys) ? keyIndex : 0);
    return signFrame(encode(message, { timestamp: Math.max(0, Math.floor(this.opts.now())), nonce: this.nonce() }), key);
  }

  /** Decode and verify a frame; a rejection is counted by reason. */
  open(frame: Uint8Array): Opened {
    let decoded: Decoded;
    try {
      decoded = decode(frame);
    } catch (err) {
      if (!(err instanceof MessageError)) throw err;
      return this.reject("malformed", err.message);
    }
    const keys = this.keysFor(decoded.message);
    if (keys === undefined) return this.reject(isGroupKeyed(decoded.message.type) ? "unknown-group" : "bad-mac", "no key");
    let keyIndex = 0;
    while (!macValid(frame, keyAt(keys, keyIndex))) if (++keyIndex === keyCount(keys)) return this.reject("bad-mac");
    const now = this.opts.now();
    if (Math.abs(decoded.stamp.timestamp - now) > this.windowMs) return this.reject("stale");
    if (!this.replay.check(decoded.stamp.timestamp, decoded.stamp.nonce, now)) return this.reject("replayed");
    return { ok: true, message: decoded.message, stamp: decoded.stamp, keyIndex };
  }

  /** Count a rejection decided elsewhere (the rate limiter). */
  reject(reason: RejectReason, detail?: string): Opened {
    this.rejections.add(reason);
    return { ok: false, reason, detail };
  }
}
