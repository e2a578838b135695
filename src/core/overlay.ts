// The overlay part of the data-plane library (README "Reaching an overlay"):
// reserves the core's overlay tables, gives it the TA space, the nodes, the
// owner of every block and the keys, and reads its statistics. The partition
// itself is computed by the control plane (src/control/partition.ts); this
// only moves it into the core, one bulk copy per change.

import { Limit, OverlayStat } from "../../assembly/shared/abi.js";
import { DataPlaneError } from "../errors.js";
import { parseAddress, parsePrefix } from "../net/addr.js";
import type { CoreExports } from "./wasm.js";

/** The raw overlay exports (assembly/overlay/). */
export interface OverlayExports extends CoreExports {
  scratch_ptr(): number;
  overlay_init(flows: number, destinations: number, blocks: number): number;
  overlay_configure(port: number, windowSeconds: number, cacheSeconds: number): void;
  overlay_flows_live(): number;
  overlay_expire_all(now: number): number;
  overlay_prefixes_clear(): void;
  overlay_prefix_add(length: number): number;
  overlay_set_space(min: number, max: number, blockPorts: number): number;
  overlay_owners_ptr(): number;
  overlay_runners_ptr(): number;
  overlay_nodes_clear(): void;
  overlay_node_set(index: number, alive: number): number;
  overlay_set_self(index: number): void;
  overlay_commit(): number;
  overlay_stats_ptr(): number;
}

/** Overlay settings of a data plane; tables are sized once. */
export interface OverlaySettings {
  /** UDP port of overlay frames on this node's address. */
  port: number;
  /** 16 bytes: the key of client <-> node frames (src/control/overlay-keys.ts). */
  clientKey: Uint8Array;
  /** 16 bytes: the key of node <-> node frames. */
  nodeKey: Uint8Array;
  /** NAT bindings at most. Default 262144. */
  flows?: number;
  /** Destinations the remote-node cache holds (at least). Default 65536. */
  destinations?: number;
  /** Blocks of the TA space at most. Default 1 << 20. */
  maxBlocks?: number;
  /** Frames stamped further than this from the packet clock are stale. Default 30 s. */
  windowSeconds?: number;
  /** A cached remote node is used this long after the last reply through it. Default 30 s. */
  cacheSeconds?: number;
}

export const DEFAULT_OVERLAY_FLOWS = 262144;
export const DEFAULT_OVERLAY_DESTINATIONS = 65536;
export const DEFAULT_OVERLAY_MAX_BLOCKS = 1 << 20;
/** The owner-table value of a block nobody owns. */
export const NO_NODE = 0xffff;
/** Node indexes the core takes (0 .. MAX_NODES-1). */
export const MAX_OVERLAY_NODES = 1024;

export interface OverlayStats {
  fromClient: number;
  toClient: number;
  viaRemote: number;
  direct: number;
  relayedToOwner: number;
  sentOut: number;
  repliesDirect: number;
  repliesViaNode: number;
  /** Replies without a binding here, handed to their block's runner-up. */
  handedOver: number;
  flowsCreated: number;
  flowsExpired: number;
  flowsLive: number;
}

const STAT_NAMES: readonly [keyof OverlayStats, OverlayStat][] = [
  ["fromClient", OverlayStat.FromClient],
  ["toClient", OverlayStat.ToClient],
  ["viaRemote", OverlayStat.ViaRemote],
  ["direct", OverlayStat.Direct],
  ["relayedToOwner", OverlayStat.RelayedToOwner],
  ["sentOut", OverlayStat.SentOut],
  ["repliesDirect", OverlayStat.RepliesDirect],
  ["repliesViaNode", OverlayStat.RepliesViaNode],
  ["handedOver", OverlayStat.HandedOver],
  ["flowsCreated", OverlayStat.FlowsCreated],
  ["flowsExpired", OverlayStat.FlowsExpired],
  ["flowsLive", OverlayStat.FlowsLive],
];

export class OverlayPlane {
  private blocks = 0;

  constructor(
    private readonly core: OverlayExports,
    settings: OverlaySettings,
  ) {
    if (settings.clientKey.length !== 16 || settings.nodeKey.length !== 16) throw new DataPlaneError("overlay keys are 16 bytes each");
    const flows = settings.flows ?? DEFAULT_OVERLAY_FLOWS;
    const max = settings.maxBlocks ?? DEFAULT_OVERLAY_MAX_BLOCKS;
    if (core.overlay_init(flows, settings.destinations ?? DEFAULT_OVERLAY_DESTINATIONS, max) !== 0) {
      throw new DataPlaneError(`cannot reserve memory for ${flows} overlay bindings and ${max} partition blocks (at most ${Limit.FLOWS} bindings)`);
    }
    const s = core.scratch_ptr();
    const mem = this.bytes();
    mem.set(settings.clientKey, s);
    mem.set(settings.nodeKey, s + 16);
    core.overlay_configure(settings.port, settings.windowSeconds ?? 30, settings.cacheSeconds ?? 30);
  }

  private bytes(): Uint8Array {
    return new Uint8Array(this.core.memory.buffer);
  }

  /** The TA space: IPv4 prefixes times ports [min, max], in blocks of `blockPorts`. Returns the number of blocks; every block is unowned until setOwners(). */
  setSpace(prefixes: readonly string[], ports: readonly [number, number], blockPorts: number): number {
    this.core.overlay_prefixes_clear();
    for (const text of prefixes) {
      const p = parsePrefix(text);
      if (p.family !== 4) throw new DataPlaneError(`overlay prefix ${text}: the overlay is IPv4 only`);
      this.bytes().set(p.bytes, this.core.scratch_ptr());
      if (this.core.overlay_prefix_add(p.length) < 0) throw new DataPlaneError(`overlay prefix ${text}: at most 16 prefixes, each /8 to /32`);
    }
    const n = this.core.overlay_set_space(ports[0], ports[1], blockPorts);
    if (n < 0) throw new DataPlaneError(`the overlay's TA space has more blocks than its table holds (${prefixes.join(", ")} x ports ${ports[0]}-${ports[1]} / ${blockPorts})`);
    this.blocks = n;
    return n;
  }

  /** Blocks of the TA space (after setSpace). */
  get blockCount(): number {
    return this.blocks;
  }

  /** Node `index` has `address` (IPv4) and is alive or not. An index keeps its address for the core's lifetime. */
  setNode(index: number, address: string, alive: boolean): void {
    const a = parseAddress(address);
    if (a.family !== 4) throw new DataPlaneError(`overlay node ${address}: the overlay is IPv4 only`);
    this.bytes().set(a.bytes, this.core.scratch_ptr());
    if (this.core.overlay_node_set(index, alive ? 1 : 0) < 0) throw new DataPlaneError(`overlay node ${index} (${address}): bad index, or the address has another index`);
  }

  /** Which node index is this node. */
  setSelf(index: number): void {
    this.core.overlay_set_self(index);
  }

  /**
   * The owner and the runner-up (node indexes, NO_NODE for none) of every
   * block (src/control/partition.ts); returns how many this node owns.
   */
  setOwners(owners: Uint16Array, runnersUp: Uint16Array = new Uint16Array(owners.length).fill(NO_NODE)): number {
    if (owners.length !== this.blocks || runnersUp.length !== this.blocks) {
      throw new DataPlaneError(`owner tables of ${owners.length} and ${runnersUp.length} blocks for a space of ${this.blocks}`);
    }
    new Uint16Array(this.core.memory.buffer, this.core.overlay_owners_ptr(), owners.length).set(owners);
    new Uint16Array(this.core.memory.buffer, this.core.overlay_runners_ptr(), runnersUp.length).set(runnersUp);
    return this.core.overlay_commit();
  }

  stats(): OverlayStats {
    const c = new BigUint64Array(this.core.memory.buffer, this.core.overlay_stats_ptr(), OverlayStat.COUNT);
    const out = {} as OverlayStats;
    for (const [name, s] of STAT_NAMES) out[name] = Number(c[s]);
    out.flowsLive = this.core.overlay_flows_live();
    return out;
  }

  /** Free every binding idle at `now` (seconds). */
  expireIdle(now: number): number {
    return this.core.overlay_expire_all(now >>> 0);
  }
}
