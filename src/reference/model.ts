// A reference model of the data plane in plain TypeScript, for differential
// testing against the Wasm core (DESIGN.md sections 2-3). This class is its
// public face, with the host API's shape (DataPlane in src/core/dataplane.ts):
// the same control calls, process() over a batch of packets, counters() and
// targetStats(). The work is in files that mirror assembly/ file by file:
//
//   parse.ts          assembly/parse.ts, wire/       the packet view (Parsed)
//   pipeline.ts       assembly/pipeline.ts           the per-batch pipeline
//   flow/flows.ts     assembly/flow/flows.ts         flow table, NAT ports, expiry
//   flow/fragments.ts assembly/flow/fragments.ts     fragment entries
//   group/groups.ts   assembly/group/groups.ts       group and target tables
//   group/tables.ts   assembly/group/tables.ts       per-group lookup tables
//   group/select.ts   assembly/group/select.ts       selection policies
//   rewrite/nat.ts, tunnel.ts, icmp-error.ts, icmp-gen.ts, gso.ts   assembly/rewrite/
//   host/reflect.ts   assembly/host/reflect.ts       the targets' replies
//   checksum.ts       assembly/wire/checksum.ts      from scratch (or FALLBACK)
//   settings.ts, peers.ts, counters.ts, hash.ts      their namesakes
//
// Written for clarity, not speed: flows live in Maps keyed by strings,
// packets are read and written byte by byte, and — the point of the model —
// after a rewrite every checksum is RECOMPUTED FROM SCRATCH
// (src/net/checksum.ts), where the core updates it incrementally.
//
// What the model mirrors on purpose, because observable behaviour depends on
// it: the flow record allocation order, eviction and the per-batch sweep
// (flow/flows.ts), NAT port probing, the random policy's generator, the IPv4
// identification counter (rewrite/tunnel.ts), and group/target table slots
// (for TableFull).

import type { Counters, DataPlaneSettings, GroupSpec, ScopeSpec, TargetSpec, TargetStats } from "../core/dataplane.js";
import { DEFAULT_CAPACITY } from "../config/types.js";
import type { ModelPacket, ModelResult } from "./batch.js";
import { ModelCounters } from "./counters.js";
import { FlowTable } from "./flow/flows.js";
import { FragmentTable } from "./flow/fragments.js";
import { GroupTable } from "./group/groups.js";
import { Selector } from "./group/select.js";
import { reflect } from "./host/reflect.js";
import { Peers } from "./peers.js";
import { processBatch, type ModelState } from "./pipeline.js";
import { IpIds } from "./rewrite/tunnel.js";
import { SegmentArea } from "./rewrite/gso.js";
import { Settings } from "./settings.js";

export type { ModelPacket, ModelResult } from "./batch.js";
export { ModelError } from "./errors.js";

export class ReferenceModel {
  private readonly m: ModelState;

  constructor(settings: DataPlaneSettings = {}) {
    const s = new Settings(settings);
    const peers = new Peers();
    if (settings.peers) peers.setPeers(settings.peers);
    if (settings.anycastPrefixes) peers.setAnycastPrefixes(settings.anycastPrefixes);
    if (settings.controlPort) peers.setControlPort(settings.controlPort);
    const cap = { ...DEFAULT_CAPACITY, ...settings.capacity };
    const counters = new ModelCounters();
    const groups = new GroupTable(cap.groups, cap.targets);
    this.m = {
      settings: s,
      peers,
      counters,
      groups,
      flows: new FlowTable(cap.flows, s, groups, counters),
      fragments: new FragmentTable(Math.max(1024, cap.flows >>> 4)),
      selector: new Selector(settings.randomSeed ?? 0),
      ipIds: new IpIds(),
      area: new SegmentArea(),
    };
  }

  /** A segment area like DataPlane.createSegmentArea's (replacing any before). */
  createSegmentArea(descriptors: number, bytes: number): void {
    this.m.area = new SegmentArea(descriptors, bytes);
  }

  /** What the last process() put into the segment area, in order (DataPlane: the area's first segmentsEmitted() packets). */
  segments(): ModelResult[] {
    return this.m.area.list;
  }

  // ------------------------------------------------------------ control

  addGroup(spec: GroupSpec): string {
    return this.m.groups.addGroup(spec);
  }

  removeGroup(key: string): void {
    this.m.groups.removeGroup(key);
  }

  setPolicy(key: string, policy: string, affinity: "client" | "flow" = "client"): void {
    this.m.groups.setPolicy(key, policy, affinity);
  }

  addTarget(key: string, spec: TargetSpec): void {
    this.m.groups.addTarget(key, spec);
  }

  removeTarget(key: string, endpoint: string): void {
    this.m.groups.removeTarget(key, endpoint);
  }

  setTargetUp(key: string, endpoint: string, up: boolean): void {
    this.m.groups.setTargetUp(key, endpoint, up);
  }

  setTargetWeight(key: string, endpoint: string, weight: number): void {
    this.m.groups.setTargetWeight(key, endpoint, weight);
  }

  /** Replace a group's scope rules. */
  setScopes(key: string, scopes: readonly ScopeSpec[]): void {
    this.m.groups.setScopes(key, scopes);
  }

  setGroupPending(key: string, pending: boolean): void {
    this.m.groups.setGroupPending(key, pending);
  }

  setPeers(addresses: readonly string[]): void {
    this.m.peers.setPeers(addresses);
  }

  setAnycastPrefixes(prefixes: readonly string[]): void {
    this.m.peers.setAnycastPrefixes(prefixes);
  }

  setControlPort(port: number): void {
    this.m.peers.setControlPort(port);
  }

  setResolveUnknown(on: boolean): void {
    this.m.peers.resolveUnknown = on;
  }

  setResolveBudget(perSecond: number): void {
    this.m.peers.setResolveBudget(perSecond);
  }

  /** Free every flow idle at `now`; returns how many. */
  expireIdle(now: number): number {
    return this.m.flows.expireIdle(now);
  }

  // ------------------------------------------------------------ packets

  /** Process one batch; a null entry is an empty slot (OFF = 0). */
  process(packets: readonly (ModelPacket | null)[]): (ModelResult | null)[] {
    return processBatch(this.m, packets);
  }

  /**
   * The replies the legacy targets would send to the forwarded NATed packets
   * of a processed batch (reflect_batch): addresses and ports swapped, an echo
   * request answered; null where there is none. Feed them to process().
   */
  reflect(results: readonly (ModelResult | null)[]): (ModelPacket | null)[] {
    return reflect(results);
  }

  // ------------------------------------------------------------ read-out

  counters(): Counters {
    return this.m.counters.read(this.m.flows.live);
  }

  targetStats(): TargetStats[] {
    return this.m.groups.targetStats();
  }

  groupKeys(): string[] {
    return this.m.groups.keys();
  }
}
