// The reference model's group and target tables (assembly/group/groups.ts):
// plain objects, a Map per group from endpoint to target in installation
// order. Control calls add, change and remove entries; the packet path only
// reads them (and counts per-target packets and flows). A removed group or
// target keeps its table slot until no flow refers to it, as in the core,
// because the slots decide TableFull.

import { AffinityKey, Policy } from "../../../assembly/shared/abi.js";
import type { GroupSpec, ScopeSpec, TargetSpec, TargetStats } from "../../core/dataplane.js";
import { endpointKey, parseAddress, parsePrefix } from "../../net/addr.js";
import { ModelError } from "../errors.js";
import { hashEndpoint, SEED_MAGLEV_OFFSET } from "../hash.js";
import { hex, icmpProto, sameAddr } from "../parse.js";
import { addressBytes } from "../settings.js";
import { addMember, commit, growMembers } from "./tables.js";

/** A scope rule: clients in prefix/length only reach targets with label `label` (a label id, 1..255). */
export interface ScopeRule {
  prefix: Uint8Array;
  length: number;
  label: number;
}

export class RefTarget {
  up = true;
  /** Member of its group (cleared on removal). */
  live = true;
  /** Live flows pinned to it. */
  active = 0;
  /** Packets forwarded to it. */
  packets = 0;
  /** Holds a slot of the target table (until removed and its last flow is gone). */
  slotUsed = true;
  /** Identity hash (rendezvous and ring points). */
  readonly hash: number;

  constructor(
    readonly group: RefGroup,
    readonly addr: Uint8Array,
    /** Host order; 0 = the client's destination port. */
    readonly port: number,
    public weight: number,
    readonly aware: boolean,
    readonly distance: number,
    /** Label id (0: none). */
    readonly label = 0,
  ) {
    this.hash = hashEndpoint(SEED_MAGLEV_OFFSET, addr, port);
  }

  get usable(): boolean {
    return this.live && this.up;
  }
}

export class RefGroup {
  targets: RefTarget[] = [];
  table: RefTarget[] = [];
  /** The table is a rendezvous table (not a ring table). */
  rendezvousTable = false;
  near: RefTarget[] = [];
  usable = 0;
  /** Longest prefix first (a stable sort, as the core's insertion sort). */
  scopes: ScopeRule[] = [];
  /** Waiting for its rendezvous answer: with no usable target, packets go to the host. */
  pending = false;
  /** Largest weight among usable targets at the last commit, capped at 0xffff. */
  wmax = 0;
  /** Room in the member list: 0, then 4, doubled whenever it is full; never shrinks. Sizes the lookup table. */
  cap = 0;
  /** Round-robin position in the target list; 0xffffffff: before the first target. */
  rrPos = 0xffffffff;
  rrRound = 0;
  /** Flows referring to the group. */
  flows = 0;
  live = true;
  /** Holds a slot of the group table (until removed and its last flow is gone). */
  slotUsed = true;

  constructor(
    readonly family: 4 | 6,
    readonly proto: number,
    readonly addr: Uint8Array,
    readonly port: number,
    public policy: Policy,
    public affinity: AffinityKey,
  ) {}
}


const POLICIES: Record<string, Policy> = {
  affinity: Policy.Affinity,
  "round-robin": Policy.RoundRobin,
  random: Policy.Random,
  "least-load": Policy.LeastLoad,
  proximity: Policy.Proximity,
};

interface GroupEntry {
  group: RefGroup;
  /** Endpoint key -> target, in installation order (as DataPlane lists them). */
  targets: Map<string, RefTarget>;
}

/** The groups by key ("tcp 203.0.113.10:80"), their targets, labels and table slots. */
export class GroupTable {
  private readonly groups = new Map<string, GroupEntry>();
  /** Live groups by family/protocol/address/port. */
  private readonly index = new Map<string, RefGroup>();
  private readonly labels = new Map<string, number>();
  private groupSlots = 0;
  private targetSlots = 0;

  constructor(private readonly groupCap: number, private readonly targetCap: number) {}

  /** The live group serving dst:port (exact port first, then the group of every port). */
  find(family: 4 | 6, proto: number, dst: Uint8Array, port: number): RefGroup | undefined {
    let g = this.index.get(`${family}/${proto}/${hex(dst)}/${port}`);
    if (!g && port !== 0) g = this.index.get(`${family}/${proto}/${hex(dst)}/0`);
    return g;
  }

  addGroup(spec: GroupSpec): string {
    const a = parseAddress(spec.address);
    const port = spec.protocol === "icmp" ? 0 : (spec.port ?? 0);
    const key = `${spec.protocol} ${endpointKey(a.bytes, port)}`;
    const policy = POLICIES[spec.policy ?? "affinity"];
    if (policy === undefined) throw new ModelError(`${key}: unknown policy ${spec.policy}`);
    const affinity = spec.affinity === "flow" ? AffinityKey.FiveTuple : AffinityKey.ClientAddress;
    const proto = spec.protocol === "tcp" ? 6 : spec.protocol === "udp" ? 17 : a.family === 4 ? 1 : 58;
    const ik = `${a.family}/${proto}/${hex(a.bytes)}/${port}`;
    if (this.index.has(ik)) throw new ModelError(`group ${key}: already exists`);
    if (this.groupSlots >= this.groupCap) throw new ModelError(`group ${key}: table full`);
    const g = new RefGroup(a.family, proto, a.bytes, port, policy, affinity);
    this.index.set(ik, g);
    this.groupSlots++;
    const entry: GroupEntry = { group: g, targets: new Map() };
    this.groups.set(key, entry);
    for (const t of spec.targets ?? []) this.installTarget(key, entry, t);
    if (spec.scopes?.length) this.installScopes(g, spec.scopes);
    commit(g);
    return key;
  }

  removeGroup(key: string): void {
    const { group: g } = this.entry(key);
    for (const t of g.targets) this.retire(t);
    g.targets = [];
    g.cap = 0;
    this.index.delete(`${g.family}/${g.proto}/${hex(g.addr)}/${g.port}`);
    g.live = false;
    g.table = [];
    g.near = [];
    this.maybeRecycleGroup(g);
    this.groups.delete(key);
  }

  setPolicy(key: string, policy: string, affinity: "client" | "flow" = "client"): void {
    const { group: g } = this.entry(key);
    const p = POLICIES[policy];
    if (p === undefined) throw new ModelError(`${key}: unknown policy ${policy}`);
    g.policy = p;
    g.affinity = affinity === "flow" ? AffinityKey.FiveTuple : AffinityKey.ClientAddress;
    commit(g);
  }

  setGroupPending(key: string, pending: boolean): void {
    this.entry(key).group.pending = pending;
  }

  /** Replace a group's scope rules. */
  setScopes(key: string, scopes: readonly ScopeSpec[]): void {
    this.installScopes(this.entry(key).group, scopes);
  }

  addTarget(key: string, spec: TargetSpec): void {
    const e = this.entry(key);
    this.installTarget(key, e, spec);
    commit(e.group);
  }

  removeTarget(key: string, endpoint: string): void {
    const e = this.entry(key);
    const t = this.target(e, endpoint);
    e.group.targets = e.group.targets.filter((x) => x !== t); // keeps list order
    this.retire(t);
    e.targets.delete(endpoint);
    commit(e.group);
  }

  setTargetUp(key: string, endpoint: string, up: boolean): void {
    const e = this.entry(key);
    this.target(e, endpoint).up = up;
    commit(e.group);
  }

  setTargetWeight(key: string, endpoint: string, weight: number): void {
    const e = this.entry(key);
    const t = this.target(e, endpoint);
    if (weight >>> 0 === 0) throw new ModelError(`target ${endpoint} of ${key}: invalid argument`);
    t.weight = weight >>> 0;
    commit(e.group);
  }

  /** A flow was pinned to t of g. */
  flowStarted(t: RefTarget, g: RefGroup): void {
    t.active++;
    g.flows++;
  }

  /** A flow of t of g ended: their slots are recycled once removed and unreferenced (targetFlowEnded). */
  flowEnded(t: RefTarget, g: RefGroup): void {
    t.active--;
    this.maybeRecycleTarget(t);
    g.flows--;
    this.maybeRecycleGroup(g);
  }

  targetStats(): TargetStats[] {
    const out: TargetStats[] = [];
    for (const [key, e] of this.groups) {
      for (const [endpoint, t] of e.targets) {
        out.push({ group: key, endpoint, packets: t.packets, activeFlows: t.active, up: t.up });
      }
    }
    return out;
  }

  keys(): string[] {
    return [...this.groups.keys()];
  }

  private labelId(label: string): number {
    if (!this.labels.has(label)) {
      if (this.labels.size + 1 > 255) throw new ModelError(`too many distinct target labels`);
      this.labels.set(label, this.labels.size + 1);
    }
    return this.labels.get(label)!;
  }

  private installScopes(g: RefGroup, scopes: readonly ScopeSpec[]): void {
    const rules = scopes.map((r) => {
      const p = parsePrefix(r.prefix);
      if (p.family !== g.family) throw new ModelError(`scope ${r.prefix} is not IPv${g.family}`);
      return { prefix: p.bytes, length: p.length, label: this.labelId(r.label) };
    });
    g.scopes = rules.sort((a, b) => b.length - a.length); // stable: equal lengths keep their order
  }

  private installTarget(key: string, e: GroupEntry, spec: TargetSpec): void {
    const g = e.group;
    if (g.proto === icmpProto(g.family) && spec.port) throw new ModelError(`target ${spec.address} of ${key}: an ICMP target has no port`);
    const addr = addressBytes(spec.address, g.family);
    const port = spec.port ?? 0;
    const tkey = endpointKey(addr, port);
    if (spec.label != null) this.labelId(spec.label);
    const weight = (spec.weight ?? 1) >>> 0;
    if (weight === 0) throw new ModelError(`target ${tkey} of ${key}: invalid argument`);
    if (g.targets.some((t) => t.port === port && sameAddr(t.addr, addr))) throw new ModelError(`target ${tkey} of ${key}: already exists`);
    growMembers(g);
    if (this.targetSlots >= this.targetCap) throw new ModelError(`target ${tkey} of ${key}: table full`);
    const t = new RefTarget(g, addr, port, weight, spec.aware ?? false, spec.distance ?? 0, spec.label == null ? 0 : this.labels.get(spec.label)!);
    addMember(g, t);
    this.targetSlots++;
    e.targets.set(tkey, t);
  }

  private entry(key: string): GroupEntry {
    const e = this.groups.get(key);
    if (!e) throw new ModelError(`no group ${key}`);
    return e;
  }

  private target(e: GroupEntry, endpoint: string): RefTarget {
    const t = e.targets.get(endpoint);
    if (!t) throw new ModelError(`no target ${endpoint}`);
    return t;
  }

  private retire(t: RefTarget): void {
    t.live = false;
    t.up = false;
    this.maybeRecycleTarget(t);
  }

  private maybeRecycleTarget(t: RefTarget): void {
    if (t.live || !t.slotUsed || t.active !== 0) return;
    t.slotUsed = false;
    this.targetSlots--;
  }

  private maybeRecycleGroup(g: RefGroup): void {
    if (g.live || !g.slotUsed || g.flows !== 0) return;
    g.slotUsed = false;
    this.groupSlots--;
  }
}
