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
// The replay cache is bounded. It forgets a nonce once its timestamp is out of
// the window (the window check rejects that frame anyway). When it is full it
// evicts the oldest entry and raises a floor: any frame stamped at or below the
// highest evicted timestamp is rejected as replayed, since the cache can no
// longer tell. So a full cache narrows the window instead of letting a replay
// through.

import * as crypto from "node:crypto";
import { createHmac, randomFillSync, timingSafeEqual } from "node:crypto";
import { Fifo } from "./fifo.js";
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
// one-shot hashes over a scratch buffer. createHmac() builds a C++ object per
// message whose weak handle every young-generation GC must then process; at
// tens of thousands of frames a second that GC work costs more than the hashing.
const oneShot = (crypto as { hash?: (algorithm: string, data: Uint8Array, encoding: "buffer") => Buffer }).hash;
const BLOCK = 64;
let scratch = new Uint8Array(2048);
const outer = new Uint8Array(BLOCK + 32);

/** HMAC-SHA-256 of `data` under `key`. */
export function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  if (oneShot === undefined) return createHmac("sha256", key).update(data).digest();
  const k = key.length > BLOCK ? oneShot("sha256", key, "buffer") : key;
  if (scratch.length < BLOCK + data.length) scratch = new Uint8Array(BLOCK + data.length);
  for (let i = 0; i < BLOCK; i++) {
    const b = i < k.length ? k[i] : 0;
    scratch[i] = b ^ 0x36;
    outer[i] = b ^ 0x5c;
  }
  scratch.set(data, BLOCK);
  outer.set(oneShot("sha256", scratch.subarray(0, BLOCK + data.length), "buffer"), BLOCK);
  return oneShot("sha256", outer, "buffer");
}

/** The MAC of frame[0 .. length-32). */
export function computeMac(frame: Uint8Array, key: Uint8Array): Uint8Array {
  return hmacSha256(key, frame.subarray(0, frame.length - MAC_LENGTH));
}

/** Fill the last 32 bytes of an encoded frame with its MAC. */
export function signFrame(frame: Uint8Array, key: Uint8Array): Uint8Array {
  frame.set(computeMac(frame, key), frame.length - MAC_LENGTH);
  return frame;
}

/** True when the frame's last 32 bytes are its MAC under `key` (constant time). */
export function macValid(frame: Uint8Array, key: Uint8Array): boolean {
  if (frame.length < MAC_LENGTH + 1) return false;
  return timingSafeEqual(computeMac(frame, key), frame.subarray(frame.length - MAC_LENGTH));
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

function nonceKey(n: Uint8Array): string {
  let s = "";
  for (let i = 0; i < n.length; i++) s += String.fromCharCode(n[i]);
  return s;
}

/** Nonces seen within the window; see the module header for how it stays bounded and safe. */
export class ReplayCache {
  /** nonce (as a latin1 string) -> timestamp. */
  private readonly seen = new Map<string, number>();
  /** The same entries in arrival order, oldest first. */
  private readonly order = new Fifo<{ key: string; ts: number }>();
  /** Frames stamped at or below this can no longer be told from replays. */
  private floor = -Infinity;
  evictions = 0;

  constructor(
    readonly windowMs: number = DEFAULT_WINDOW_MS,
    readonly capacity: number = DEFAULT_REPLAY_CAPACITY,
  ) {}

  get size(): number {
    return this.seen.size;
  }

  /** Records (timestamp, nonce) and returns true if it is fresh; false if it was seen (or may have been). */
  check(timestamp: number, nonce: Uint8Array, now: number): boolean {
    this.expire(now);
    if (timestamp <= this.floor) return false;
    const key = nonceKey(nonce);
    if (this.seen.has(key)) return false;
    while (this.seen.size >= this.capacity) {
      const oldest = this.order.shift()!;
      this.seen.delete(oldest.key);
      if (oldest.ts > this.floor) this.floor = oldest.ts;
      this.evictions++;
    }
    this.seen.set(key, timestamp);
    this.order.push({ key, ts: timestamp });
    return true;
  }

  /** Forget entries, oldest arrival first, while their timestamp is out of the window. */
  private expire(now: number): void {
    const limit = now - this.windowMs;
    for (let e = this.order.peek(); e !== undefined && e.ts < limit; e = this.order.peek()) {
      this.order.shift();
      this.seen.delete(e.key);
    }
  }
}

export interface AuthenticatorOptions {
  /** Key of proxy <-> proxy frames; undefined: this side handles no proxy frames (a target). */
  readonly clusterKey?: Uint8Array;
  /** The join key of a group, or undefined when this side has none. */
  readonly groupKey: (ta: TransportAddress) => Uint8Array | undefined;
  readonly now: () => number;
  /** Accepted clock difference either way, ms. Default 30 s. */
  readonly windowMs?: number;
  readonly replayCapacity?: number;
  readonly nonce?: () => Uint8Array;
}

export type Opened = { readonly ok: true; readonly message: Message; readonly stamp: Stamp } | { readonly ok: false; readonly reason: RejectReason; readonly detail?: string };

/** Seals outgoing messages and opens incoming frames for one node (a proxy or a target). */
export class Authenticator {
  readonly rejections = new Rejections();
  readonly replay: ReplayCache;
  private readonly windowMs: number;
  private readonly nonce: () => Uint8Array;

  constructor(private readonly opts: AuthenticatorOptions) {
    this.windowMs = opts.windowMs ?? DEFAULT_WINDOW_MS;
    this.replay = new ReplayCache(this.windowMs, opts.replayCapacity ?? DEFAULT_REPLAY_CAPACITY);
    this.nonce = opts.nonce ?? pooledNonces();
  }

  /** The key a message of this kind about this group is signed with, or undefined. */
  keyFor(message: Message): Uint8Array | undefined {
    return isGroupKeyed(message.type) ? this.opts.groupKey((message as { ta: TransportAddress }).ta) : this.opts.clusterKey;
  }

  /** Encode, stamp (now, fresh nonce) and sign. Throws MessageError when the message is invalid or no key is known. */
  seal(message: Message): Uint8Array {
    const key = this.keyFor(message);
    if (key === undefined) throw new MessageError("value", `no key to sign a ${message.type} message`);
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
    const key = this.keyFor(decoded.message);
    if (key === undefined) return this.reject(isGroupKeyed(decoded.message.type) ? "unknown-group" : "bad-mac", "no key");
    if (!macValid(frame, key)) return this.reject("bad-mac");
    const now = this.opts.now();
    if (Math.abs(decoded.stamp.timestamp - now) > this.windowMs) return this.reject("stale");
    if (!this.replay.check(decoded.stamp.timestamp, decoded.stamp.nonce, now)) return this.reject("replayed");
    return { ok: true, message: decoded.message, stamp: decoded.stamp };
  }

  /** Count a rejection decided elsewhere (the rate limiter). */
  reject(reason: RejectReason, detail?: string): Opened {
    this.rejections.add(reason);
    return { ok: false, reason, detail };
  }
}
