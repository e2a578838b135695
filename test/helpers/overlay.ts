// A small overlay in one process for tests and the simulation: N data planes
// (overlay nodes) sharing one TA space and the partition of it over their ids,
// with helpers to build a client's frames, run packets through a node, and
// take frames apart again. Plain data planes: no sockets, no namespaces.

import { DataPlane, type DataPlaneSettings } from "../../src/core/dataplane.js";
import type { PacketBatch } from "../../src/core/batch.js";
import { Partition, type PartitionSpace } from "../../src/control/partition.js";
import { overlayClientKey, overlayNodeKey } from "../../src/control/overlay-keys.js";
import { openFrame, sealFrame, OverlayKind, type Opened } from "../../src/net/overlay-frame.js";
import { parseAddress } from "../../src/net/addr.js";
import { buildPacket } from "./packets.js";
import { run, type Result } from "./dataplane.js";

export const OVERLAY_KEY = new Uint8Array(32).fill(0x0e);
export const CLUSTER_KEY = new Uint8Array(32).fill(0xc1);
export const CLIENT_KEY = overlayClientKey(OVERLAY_KEY);
export const NODE_KEY = overlayNodeKey(CLUSTER_KEY);
export const PORT = 7480;
export const SPACE: PartitionSpace = { prefixes: ["203.0.113.0/24"], ports: [1024, 65535], blockPorts: 256 };

export const ip4 = (a: string): Uint8Array => parseAddress(a).bytes;
export const u32 = (a: Uint8Array): number => ((a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3]) >>> 0;
export const fmt = (a: Uint8Array): string => a.join(".");

export interface NodeSpec {
  id: string;
  address: string;
}

export interface OverlayNetOptions {
  space?: PartitionSpace;
  settings?: Partial<DataPlaneSettings>;
  flows?: number;
  cacheSeconds?: number;
}

/** One node: its data plane and a batch to run packets through it. */
export class Node {
  constructor(
    readonly id: string,
    readonly address: string,
    readonly index: number,
    readonly dp: DataPlane,
    private readonly batch: PacketBatch,
  ) {}

  run(packets: readonly Uint8Array[], time = 1000): Result[] {
    return run(this.dp, this.batch, packets, 101, time);
  }

  one(packet: Uint8Array, time = 1000): Result {
    return this.run([packet], time)[0];
  }
}

export class OverlayNet {
  readonly nodes: Node[] = [];
  readonly partition: Partition;

  constructor(specs: readonly NodeSpec[], opts: OverlayNetOptions = {}) {
    const space = opts.space ?? SPACE;
    this.partition = new Partition(space);
    this.partition.setNodes(specs.map((s) => s.id));
    specs.forEach((s, i) => {
      const dp = new DataPlane({
        address: s.address,
        capacity: { flows: 1024, groups: 4, targets: 4 },
        ...opts.settings,
        overlay: { port: PORT, clientKey: CLIENT_KEY, nodeKey: NODE_KEY, flows: opts.flows ?? 4096, destinations: 1024, maxBlocks: 1 << 17, cacheSeconds: opts.cacheSeconds ?? 30 },
      });
      const o = dp.overlay!;
      o.setSpace(space.prefixes, space.ports, space.blockPorts);
      specs.forEach((t, j) => o.setNode(j, t.address, true));
      o.setSelf(i);
      this.nodes.push(new Node(s.id, s.address, i, dp, dp.createBatch(16, 16 * 4096)));
    });
    this.commit();
  }

  node(id: string): Node {
    return this.nodes.find((n) => n.id === id)!;
  }

  /** Give every node the partition's current owners. */
  commit(): void {
    const index = (id: string): number => this.node(id).index;
    const owners = this.partition.ownerTable(index);
    const runnersUp = this.partition.runnerUpTable(index);
    for (const n of this.nodes) n.dp.overlay!.setOwners(owners, runnersUp);
  }

  /** Every node learns that `id` is dead (or alive again); the partition follows. */
  setAlive(id: string, alive: boolean): void {
    const dead = this.node(id);
    for (const n of this.nodes) n.dp.overlay!.setNode(dead.index, dead.address, alive);
    this.partition.setNodes(this.nodes.filter((n) => (n === dead ? alive : this.partition.indexOf(n.id) >= 0)).map((n) => n.id));
    this.commit();
  }
}

/** An IPv4 UDP packet from:fport -> to:tport carrying `payload`. */
export function udp(from: string, fport: number, to: string, tport: number, payload: Uint8Array): Uint8Array {
  return buildPacket({ family: 4, proto: "udp", src: ip4(from), dst: ip4(to), sport: fport, dport: tport, payload });
}

/** A client's frame: `inner` sealed (client key unless given) in UDP from the client's endpoint to a node's overlay port. */
export function clientFrame(inner: Uint8Array, client: { address: string; port: number }, node: string, time = 1000, key = CLIENT_KEY): Uint8Array {
  return udp(client.address, client.port, node, PORT, sealFrame(inner, OverlayKind.ClientData, key, time));
}

export interface Outer {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  /** The frame, opened with the key of its kind. */
  frame: Opened;
}

/** Take an overlay UDP packet apart (node key for node kinds, client key otherwise). */
export function outer(packet: Uint8Array, time = 1000): Outer {
  const hl = (packet[0] & 15) * 4;
  const payload = packet.subarray(hl + 8, ((packet[2] << 8) | packet[3]));
  const kind = payload[8];
  const key = kind === OverlayKind.Reply || kind === OverlayKind.SendOut ? NODE_KEY : CLIENT_KEY;
  return {
    src: fmt(packet.subarray(12, 16)),
    dst: fmt(packet.subarray(16, 20)),
    sport: (packet[hl] << 8) | packet[hl + 1],
    dport: (packet[hl + 2] << 8) | packet[hl + 3],
    frame: openFrame(payload, key, time),
  };
}

/** The inner packet of an overlay UDP packet (throws when the frame does not open). */
export function innerOf(packet: Uint8Array, time = 1000): Uint8Array {
  const o = outer(packet, time);
  if (!o.frame.ok) throw new Error(`frame does not open: ${o.frame.reason}`);
  return o.frame.inner.slice();
}
