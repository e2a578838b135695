// The target side of a join: JOIN to the anycast control address until a
// JOIN_ACK arrives (retries with exponential backoff and jitter), then a
// KEEPALIVE every interval the JAP asked for, and LEAVE on stop().
//
// Keepalives go to the anycast address, not to the JAP's unicast address:
// native anycast delivers them to whichever proxy is nearest now. If that is
// still the JAP, it renews the target; if routing moved (or the JAP died), the
// new nearest proxy does not know the target, treats the keepalive as a join
// and answers with a JOIN_ACK, so the target is served again within one
// keepalive interval and learns its new JAP; the old JAP drops it after three
// missed keepalives. Sending to the JAP's unicast address would instead keep a
// target attached to a far (or dead) proxy. LEAVE goes to both the anycast
// address and the last JAP's unicast address, so the proxy holding the target
// hears it even if routing has just moved.
//
// No sockets, no timers: the owner calls tick() (nextDue() says when) and
// feeds receive().

import { Authenticator } from "./auth.js";
import type { ProxyRef, RejectCode, TargetInfo } from "./message.js";
import { sameEndpoint, sameTa, type Endpoint, type TransportAddress } from "./ta.js";

export type JoinerState = "idle" | "joining" | "joined" | "rejected" | "stopped";

export interface JoinerEvent {
  readonly state: JoinerState;
  /** The JAP serving the target (joined). */
  readonly jap?: ProxyRef;
  /** True when a joined target's JAP changed. */
  readonly moved?: boolean;
  readonly keepaliveIntervalS?: number;
  /** Why the JAP refused (rejected). */
  readonly reason?: RejectCode;
  /** ms until the next JOIN (joining, rejected). */
  readonly retryInMs?: number;
}

export interface JoinerOptions {
  readonly ta: TransportAddress;
  readonly target: TargetInfo;
  /** The group's join key. */
  readonly key: Uint8Array;
  /** The anycast control endpoint (anycast address, control port). */
  readonly anycast: Endpoint;
  readonly now: () => number;
  readonly send: (to: Endpoint, bytes: Uint8Array) => void;
  /** First retry delay, ms. Default 500. */
  readonly retryInitialMs?: number;
  /** Largest retry delay, ms (also the retry delay after a rejection). Default 30 s. */
  readonly retryMaxMs?: number;
  /** Uniform in [0, 1), for jitter. Default Math.random. */
  readonly random?: () => number;
  readonly nonce?: () => Uint8Array;
  readonly windowMs?: number;
  readonly onState?: (ev: JoinerEvent) => void;
}

export class Joiner {
  private st: JoinerState = "idle";
  private japRef: ProxyRef | undefined;
  private interval = 0;
  private delay: number;
  private next = Infinity;
  private readonly auth: Authenticator;
  private readonly random: () => number;
  readonly counters = { joins: 0, keepalives: 0, leaves: 0, acks: 0, rejectedFrames: 0 };

  constructor(private readonly opts: JoinerOptions) {
    this.delay = opts.retryInitialMs ?? 500;
    this.random = opts.random ?? Math.random;
    this.auth = new Authenticator({
      groupKey: (ta) => (sameTa(ta, opts.ta) ? opts.key : undefined),
      now: opts.now,
      windowMs: opts.windowMs,
      replayCapacity: 4096,
      nonce: opts.nonce,
    });
  }

  get state(): JoinerState {
    return this.st;
  }

  /** The JAP serving the target, once joined. */
  get jap(): ProxyRef | undefined {
    return this.japRef;
  }

  /** Rejected frames by reason (bad MAC, stale, replayed, ...). */
  get rejections(): Readonly<Record<string, number>> {
    return this.auth.rejections.counts;
  }

  /** When tick() next has something to do (ms), Infinity when nothing. */
  nextDue(): number {
    return this.next;
  }

  start(): void {
    if (this.st !== "idle") return;
    this.st = "joining";
    this.sendJoin();
    this.emit({ state: "joining", retryInMs: this.next - this.opts.now() });
  }

  tick(): void {
    const now = this.opts.now();
    if (now < this.next) return;
    if (this.st === "joining" || this.st === "rejected") this.sendJoin();
    else if (this.st === "joined") {
      this.counters.keepalives++;
      this.opts.send(this.opts.anycast, this.auth.seal({ type: "keepalive", ta: this.opts.ta, target: this.opts.target }));
      this.next = now + this.interval * 1000;
    }
  }

  receive(_from: Endpoint, bytes: Uint8Array): void {
    if (this.st === "idle" || this.st === "stopped") return;
    const opened = this.auth.open(bytes);
    if (!opened.ok) {
      this.counters.rejectedFrames++;
      return;
    }
    const m = opened.message;
    if (m.type !== "join-ack" || !sameTa(m.ta, this.opts.ta) || !sameEndpoint(m.endpoint, this.opts.target.endpoint)) return;
    this.counters.acks++;
    const now = this.opts.now();
    if (!m.accepted) {
      this.st = "rejected";
      this.japRef = undefined;
      this.next = now + this.retryMax();
      this.emit({ state: "rejected", reason: m.reason, jap: m.jap, retryInMs: this.retryMax() });
      return;
    }
    const was = this.st;
    const previous = this.japRef;
    const moved = was === "joined" && previous !== undefined && previous.id !== m.jap.id;
    const changed = was !== "joined" || moved || this.interval !== m.keepaliveInterval;
    this.st = "joined";
    this.japRef = m.jap;
    this.interval = m.keepaliveInterval;
    this.delay = this.opts.retryInitialMs ?? 500;
    if (was !== "joined" || this.interval * 1000 < this.next - now) this.next = now + this.interval * 1000;
    if (changed) this.emit({ state: "joined", jap: m.jap, moved, keepaliveIntervalS: m.keepaliveInterval });
  }

  /** LEAVE (to the anycast address and to the last JAP) and stop. */
  stop(): void {
    if (this.st === "stopped") return;
    const was = this.st;
    this.st = "stopped";
    this.next = Infinity;
    if (was !== "idle") {
      const leave = { type: "leave", ta: this.opts.ta, endpoint: this.opts.target.endpoint } as const;
      this.counters.leaves++;
      this.opts.send(this.opts.anycast, this.auth.seal(leave));
      if (this.japRef && !sameEndpoint(this.japRef.endpoint, this.opts.anycast)) {
        this.counters.leaves++;
        this.opts.send(this.japRef.endpoint, this.auth.seal(leave));
      }
    }
    this.emit({ state: "stopped" });
  }

  private retryMax(): number {
    return this.opts.retryMaxMs ?? 30_000;
  }

  private sendJoin(): void {
    const now = this.opts.now();
    this.counters.joins++;
    this.opts.send(this.opts.anycast, this.auth.seal({ type: "join", ta: this.opts.ta, target: this.opts.target }));
    // Full jitter on the upper half: delay * [0.5, 1.0), so many targets restarting together spread out.
    const wait = this.st === "rejected" ? this.retryMax() : this.delay * (0.5 + this.random() / 2);
    this.next = now + wait;
    if (this.st === "joining") this.delay = Math.min(this.retryMax(), this.delay * 2);
  }

  private emit(ev: JoinerEvent): void {
    this.opts.onState?.(ev);
  }
}
