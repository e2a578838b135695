// When each prefix is announced: the decision, apart from any BGP daemon.
// A prefix is announced while pias serves and, when it has groups with health
// checks (and withdrawWhenNoTargets), while one of its groups can serve: a
// health-checked group with a target up, or an unchecked group with targets.
// On shutdown the announced prefixes turn graceful (GRACEFUL_SHUTDOWN), then
// everything is withdrawn. No I/O, no timers and no logging here: the
// daemon's BGP glue feeds it, applies it and logs what BIRD then does.

import type { BgpPrefixConfig } from "../config/bgp.js";
import type { GroupConfig } from "../config/types.js";
import { parsePrefix, prefixContains } from "../net/addr.js";
import { transportAddressKey } from "../net/ta.js";
import type { PrefixState } from "./bird-config.js";

/** A checked target's state, as the health checker reports it. */
export interface TargetUp {
  /** The group's key ("tcp 203.0.113.10:80"). */
  readonly group: string;
  /** The target's key ("192.0.2.11:8080"). */
  readonly target: string;
  readonly up: boolean;
}

export interface Decision {
  readonly state: PrefixState;
  /** Why, for the log line. */
  readonly reason: string;
}

/** Whether a prefix should be announced while pias serves. */
export function decidePrefix(p: BgpPrefixConfig, groups: readonly GroupConfig[], health: readonly TargetUp[]): Decision {
  if (!p.withdrawWhenNoTargets) return { state: "announced", reason: "serving (withdrawWhenNoTargets: false)" };
  const prefix = parsePrefix(p.prefix);
  const inside = groups.filter((g) => prefixContains(prefix, g.addressBytes));
  if (!inside.some((g) => g.health !== null)) return { state: "announced", reason: "serving" };
  const up = new Set(health.filter((h) => h.up).map((h) => `${h.group}\u0000${h.target}`));
  const serving = inside.some((g) => {
    if (g.health === null) return g.targets.length > 0;
    const key = transportAddressKey(g.protocol, g.addressBytes, g.port);
    return g.targets.some((t) => up.has(`${key}\u0000${t.key}`));
  });
  return serving ? { state: "announced", reason: "serving: a target is up" } : { state: "withdrawn", reason: "no target of its groups is up" };
}

export class Announcer {
  private readonly wanted = new Map<string, Decision>();
  private stopping = false;

  /**
   * Decide every configured prefix again (after start, a health change or a
   * reload); prefixes no longer configured are withdrawn. Returns whether a
   * state changed. Ignored once the shutdown began.
   */
  update(announce: readonly BgpPrefixConfig[], groups: readonly GroupConfig[], health: readonly TargetUp[]): boolean {
    if (this.stopping) return false;
    let changed = false;
    const configured = new Set(announce.map((a) => a.prefix));
    for (const a of announce) changed = this.set(a.prefix, decidePrefix(a, groups, health)) || changed;
    for (const prefix of this.wanted.keys()) {
      if (!configured.has(prefix)) changed = this.set(prefix, { state: "withdrawn", reason: "no longer in bgp.announce" }) || changed;
    }
    return changed;
  }

  /** SIGTERM: every announced prefix turns graceful; health and reloads change nothing from now on. */
  beginShutdown(): void {
    this.stopping = true;
    for (const [prefix, d] of this.wanted) {
      if (d.state === "announced") this.set(prefix, { state: "graceful", reason: "shutting down: GRACEFUL_SHUTDOWN (65535:0) while flows drain" });
    }
  }

  /** The end of the graceful phase: withdraw everything. */
  withdrawAll(reason: string): void {
    this.stopping = true;
    for (const prefix of this.wanted.keys()) this.set(prefix, { state: "withdrawn", reason });
  }

  /** Whether the shutdown began (withdrawals are then expected, not a failure). */
  get shuttingDown(): boolean {
    return this.stopping;
  }

  /** Forget a withdrawn prefix that is no longer configured (once BIRD has withdrawn it). */
  forget(prefix: string): void {
    if (this.wanted.get(prefix)?.state === "withdrawn") this.wanted.delete(prefix);
  }

  /** The wanted state of every prefix pias knows (configured ones, and removed ones not yet forgotten), with the reason. */
  decisions(): ReadonlyMap<string, Decision> {
    return this.wanted;
  }

  /** The wanted state of every prefix pias knows. */
  states(): Map<string, PrefixState> {
    return new Map([...this.wanted].map(([prefix, d]) => [prefix, d.state]));
  }

  private set(prefix: string, d: Decision): boolean {
    const old = this.wanted.get(prefix);
    this.wanted.set(prefix, d);
    return old?.state !== d.state;
  }
}
