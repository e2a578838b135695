// This proxy as an overlay node (README "Reaching an overlay", paper §6.2):
// between the overlay role of the control plane (src/control/overlay.ts: the
// overlay nodes' heartbeat ring, discovery) and the data plane's overlay
// tables (src/core/overlay.ts).
//
// - The data plane gets the TA space once, then every live overlay node (a
//   fixed index per node id for the process's life, this node 0) and, after
//   every membership change, the partition's owner of every block
//   (src/control/partition.ts, changed incrementally: only the blocks of the
//   node that came or went move).
// - The proxy's cluster control node runs the overlay role, and the overlay's
//   discovery group is signed with the overlay key like a cluster group's
//   joins (overlayCluster()).
//
// Per packet nothing happens here: the core handles every overlay packet.

import type { Logger } from "pino";
import type { ClusterConfig, ClusterGroupConfig, PiasConfig } from "../config/types.js";
import { overlayGroupKey, type OverlayConfig } from "../config/overlay.js";
import type { ControlNodeOptions } from "../control/node.js";
import type { MembershipEvent } from "../control/membership.js";
import type { OverlayRole } from "../control/overlay.js";
import { overlayClientKey, overlayNodeKey } from "../control/overlay-keys.js";
import { Partition } from "../control/partition.js";
import type { DataPlane, DataPlaneSettings } from "../core/dataplane.js";
import { MAX_OVERLAY_NODES, type OverlayStats } from "../core/overlay.js";
import { formatAddress, parseAddress } from "../net/addr.js";

const DEFAULT_DISTANCE = 100;

/** The data-plane settings of an overlay node (empty without an overlay). */
export function overlayDataPlane(config: PiasConfig): Pick<DataPlaneSettings, "overlay"> {
  const o = config.overlay;
  if (!o || !config.cluster) return {};
  return {
    overlay: {
      port: o.port,
      clientKey: overlayClientKey(o.key),
      nodeKey: overlayNodeKey(config.cluster.key),
      flows: o.flows,
      destinations: o.destinations,
      maxBlocks: o.blocks,
      windowSeconds: o.windowSeconds,
      cacheSeconds: o.cacheSeconds,
    },
  };
}

/**
 * The cluster a proxy runs, overlay node or not: an overlay node's cluster
 * has the overlay's discovery group among its groups (keyed by the overlay
 * key, so clients can sign DISCOVERs for it) and its control node the overlay
 * role.
 */
export function overlayCluster(cluster: ClusterConfig, o: OverlayConfig | null): { cluster: ClusterConfig; options: Partial<ControlNodeOptions> } {
  if (!o) return { cluster, options: {} };
  const group: ClusterGroupConfig = {
    key: overlayGroupKey(o), protocol: "udp", address: formatAddress(o.group.address), addressBytes: o.group.address, port: o.port,
    joinKey: o.key, acceptJoinKey: null, policy: "proximity", affinity: "client",
  };
  return {
    cluster: { ...cluster, groups: [...cluster.groups, group] },
    options: {
      overlay: {
        group: o.group,
        port: o.port,
        seeds: o.seeds.map((s) => ({ address: parseAddress(s).bytes, port: cluster.controlPort })),
        distance: (id) => cluster.distances[id] ?? DEFAULT_DISTANCE,
      },
    },
  };
}

export interface OverlayStatus {
  readonly stats: OverlayStats;
  /** Live overlay nodes, this one included. */
  readonly nodes: number;
  readonly blocks: number;
  readonly blocksOwned: number;
  /** Blocks that changed owner since start. */
  readonly blocksMoved: number;
}

export class OverlayNode {
  private readonly partition: Partition;
  private readonly index = new Map<string, number>();
  private readonly addresses: string[] = [];
  private owned = 0;
  private moved = 0;

  constructor(
    private readonly cfg: OverlayConfig,
    private readonly selfId: string,
    selfAddress: string,
    private readonly role: OverlayRole,
    private readonly dp: DataPlane,
    private readonly log: Logger,
  ) {
    this.partition = new Partition(cfg);
    const plane = dp.overlay!;
    plane.setSpace(cfg.prefixes, cfg.ports, cfg.blockPorts);
    plane.setSelf(this.indexOf(selfId, selfAddress));
    plane.setNode(0, selfAddress, true);
    this.partition.join(selfId);
    this.publish();
    role.onChange((ev) => this.membership(ev));
  }

  /** The node's fixed index in the data plane (assigned on first sight, kept for good). */
  private indexOf(id: string, address: string): number {
    let i = this.index.get(id);
    if (i === undefined) {
      i = this.index.size;
      this.index.set(id, i);
    }
    this.addresses[i] = address;
    return i;
  }

  private membership(ev: MembershipEvent): void {
    const id = ev.proxy.id;
    const address = formatAddress(ev.proxy.endpoint.address);
    const known = this.index.get(id);
    if (known === undefined && this.index.size >= MAX_OVERLAY_NODES) {
      this.log.error({ node: id }, `more than ${MAX_OVERLAY_NODES} overlay nodes: ignored`);
      return;
    }
    try {
      const i = this.indexOf(id, address);
      this.dp.overlay!.setNode(i, address, ev.kind === "up");
      const moved = ev.kind === "up" ? this.partition.join(id) : this.partition.leave(id);
      this.moved += moved;
      this.publish();
      this.log.info({ node: id, address, kind: ev.kind, moved, owned: this.owned, nodes: this.partition.nodes().length }, "overlay node");
    } catch (err) {
      this.log.error({ node: id, address, err: (err as Error).message }, "cannot apply overlay membership");
    }
  }

  /** Give the data plane the owner and runner-up of every block. */
  private publish(): void {
    const index = (id: string): number => this.index.get(id)!;
    this.owned = this.dp.overlay!.setOwners(this.partition.ownerTable(index), this.partition.runnerUpTable(index));
  }

  status(): OverlayStatus {
    return {
      stats: this.dp.overlay!.stats(),
      nodes: this.role.nodes().length,
      blocks: this.partition.blocks,
      blocksOwned: this.owned,
      blocksMoved: this.moved,
    };
  }
}
