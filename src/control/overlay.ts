// The overlay role of a proxy that is an overlay node (README "Reaching an
// overlay", paper §6.2), beside membership, JAP, RAP and IAP in ControlNode:
//
// - Membership of overlay nodes: a heartbeat ring of its own
//   (OVERLAY_HEARTBEAT, the body of a HEARTBEAT, signed with the cluster key)
//   run by the same Membership code as the proxies' ring. A proxy that is not
//   an overlay node never answers, so it never becomes live here. The live
//   overlay nodes are what the TA partition is computed over.
// - Discovery: the overlay's group TA names the overlay in a DISCOVER (signed
//   with the overlay key, the group's "join key"): the proxy a client's query
//   reaches by anycast answers with the nearest live overlay nodes, itself
//   first, then by distance (`nearest`), or at random, skipping the excluded
//   ones. Members are the nodes' frame endpoints (address, overlay port),
//   labelled with their ids. Nobody can JOIN the overlay's group.
//
// No sockets, no timers: ControlNode feeds it and ticks it.

import { pickMembers } from "./discovery.js";
import { Membership, type MembershipEvent } from "./membership.js";
import type { DiscoverMode, HeartbeatMessage, Member, Message, OverlayHeartbeatMessage, ProxyRef } from "./message.js";
import { epKey, sameTa, type Endpoint, type TransportAddress } from "./ta.js";

export interface OverlayRoleOptions {
  /** The overlay's discovery group (udp, an overlay address, the overlay port). */
  readonly group: TransportAddress;
  /** UDP port of overlay frames on every node. */
  readonly port: number;
  /** Control endpoints of other overlay nodes to heartbeat from the start. */
  readonly seeds: readonly Endpoint[];
  /** Distance from this node to another (by id), for `nearest`. Default 100 for all. */
  readonly distance?: (id: string) => number;
  readonly heartbeatIntervalMs?: number;
  readonly deadAfter?: number;
}

export interface OverlayRoleContext {
  readonly self: ProxyRef;
  readonly incarnation?: number;
  readonly now: () => number;
  readonly send: (to: Endpoint, message: Message) => void;
  readonly random: () => number;
}

export class OverlayRole {
  readonly membership: Membership;
  private readonly distance: (id: string) => number;

  constructor(
    private readonly opts: OverlayRoleOptions,
    private readonly ctx: OverlayRoleContext,
  ) {
    this.distance = opts.distance ?? (() => 100);
    this.membership = new Membership({
      self: ctx.self,
      incarnation: ctx.incarnation,
      seeds: opts.seeds,
      intervalMs: opts.heartbeatIntervalMs,
      deadAfter: opts.deadAfter,
      now: ctx.now,
      send: (to, hb) => ctx.send(to, { ...hb, type: "overlay-heartbeat" }),
    });
  }

  onChange(fn: (ev: MembershipEvent) => void): void {
    this.membership.onChange(fn);
  }

  /** True when `ta` is the overlay's discovery group. */
  isGroup(ta: TransportAddress): boolean {
    return sameTa(ta, this.opts.group);
  }

  onHeartbeat(msg: OverlayHeartbeatMessage): void {
    this.membership.onHeartbeat({ ...msg, type: "heartbeat" } as HeartbeatMessage);
  }

  tick(): void {
    this.membership.tick();
  }

  /** Live overlay nodes, this one included. */
  nodes(): ProxyRef[] {
    return this.membership.live();
  }

  /** Up to k live overlay nodes for a discovery query, as frame endpoints labelled with their ids. */
  members(k: number, mode: DiscoverMode, exclude: readonly Endpoint[]): Member[] {
    const skip = new Set(exclude.map(epKey));
    const self = this.ctx.self.id;
    const candidates = this.nodes()
      .map((p) => ({ id: p.id, endpoint: { address: p.endpoint.address, port: this.opts.port } }))
      .filter((c) => !skip.has(epKey(c.endpoint)));
    return pickMembers(candidates, k, {
      mode,
      distance: (c) => (c.id === self ? -1 : this.distance(c.id)),
      random: this.ctx.random,
    }).map((c) => ({ endpoint: c.endpoint, label: c.id }));
  }
}
